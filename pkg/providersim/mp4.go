package providersim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Codecs the generated MP4 files can declare in their sample entry.
const (
	CodecAVC  = "avc1"
	CodecHEVC = "hvc1"
)

// VideoParams describe a generated MP4 file.
type VideoParams struct {
	// Size is the whole file's length in bytes (header and mdat).
	Size int64
	// Width and Height are the presentation size written to tkhd and the sample entry.
	Width, Height int
	// Codec is CodecAVC or CodecHEVC.
	Codec string
	// DurationMs is the movie's duration in milliseconds.
	DurationMs int64
	// Seed selects the pseudo-random mdat payload.
	Seed uint64
}

const (
	fps            = 24
	mediaTimescale = 24000
	sampleDelta    = mediaTimescale / fps
	movieTimescale = 1000
	// payloadBlock is the unit in which payload bytes are generated: any block
	// can be produced on its own, so any offset can be read without the rest.
	payloadBlock = 64 << 10
)

// errTooSmall means the requested file size cannot hold the MP4 header and one
// byte per sample.
var errTooSmall = errors.New("video size too small for the mp4 header and its samples")

// mp4Header builds the bytes that precede the mdat payload (ftyp, moov, mdat
// box header) and returns them with the payload's length, so that
// len(header)+payload == p.Size exactly.
func mp4Header(p VideoParams) ([]byte, int64, error) {
	head, l, err := mp4HeaderLayout(p, 1, 1)
	return head, l.payload, err
}

// mp4HeaderLayout is mp4Header for samples whose first is at least minFirst
// bytes and the others at least minOther; it returns the sample layout.
func mp4HeaderLayout(p VideoParams, minFirst, minOther int64) ([]byte, sampleLayout, error) {
	var none sampleLayout
	if p.Width <= 0 || p.Height <= 0 || p.Width > math.MaxUint16 || p.Height > math.MaxUint16 {
		return nil, none, fmt.Errorf("invalid video size %dx%d", p.Width, p.Height)
	}
	if p.Codec != CodecAVC && p.Codec != CodecHEVC {
		return nil, none, fmt.Errorf("unknown codec %q", p.Codec)
	}
	if p.DurationMs <= 0 || p.DurationMs > math.MaxUint32/mediaTimescale {
		return nil, none, fmt.Errorf("invalid duration %dms", p.DurationMs)
	}
	samples := sampleCount(p)
	largeMdat := p.Size > math.MaxUint32-(1<<20)
	mdatHeader := int64(8)
	if largeMdat {
		mdatHeader = 16
	}
	// The header's length does not depend on the payload's size (only on the
	// sample count and the mdat header form), so build once with a zero
	// payload to learn it, then again with the real sizes.
	need := minFirst + (samples-1)*minOther
	build := func(l sampleLayout) []byte {
		b := &boxes{}
		writeFtyp(b, p.Codec)
		writeMoov(b, p, l, 0)
		return b.buf
	}
	head := int64(len(build(newLayout(samples, need, minFirst)))) + mdatHeader
	payload := p.Size - head
	if payload < need {
		return nil, none, fmt.Errorf("%w: need at least %d bytes, got %d", errTooSmall, head+need, p.Size)
	}
	l := newLayout(samples, payload, minFirst)
	b := &boxes{}
	writeFtyp(b, p.Codec)
	writeMoov(b, p, l, uint32(head))
	if largeMdat {
		b.u32(1)
		b.str("mdat")
		b.u64(uint64(payload + 16))
	} else {
		b.u32(uint32(payload + 8))
		b.str("mdat")
	}
	if int64(len(b.buf)) != head {
		return nil, none, fmt.Errorf("internal error: header length %d, want %d", len(b.buf), head)
	}
	return b.buf, l, nil
}

// sampleLayout places the samples in the mdat payload, one after another:
// the first takes first bytes, the others each, the last the remainder.
type sampleLayout struct {
	n, first, each, payload int64
}

func newLayout(n, payload, minFirst int64) sampleLayout {
	if n == 1 {
		return sampleLayout{n: 1, first: payload, payload: payload}
	}
	each := payload / n
	first := each
	if first < minFirst {
		first = minFirst
		each = (payload - first) / (n - 1)
	}
	return sampleLayout{n: n, first: first, each: each, payload: payload}
}

func (l sampleLayout) start(i int64) int64 {
	if i == 0 {
		return 0
	}
	return l.first + (i-1)*l.each
}

func (l sampleLayout) size(i int64) int64 {
	switch i {
	case l.n - 1: // first, so that a single sample is the whole payload
		return l.payload - l.start(i)
	case 0:
		return l.first
	}
	return l.each
}

// at returns the sample holding payload offset off.
func (l sampleLayout) at(off int64) int64 {
	if off < l.first || l.n == 1 {
		return 0
	}
	return min(1+(off-l.first)/l.each, l.n-1)
}

func sampleCount(p VideoParams) int64 {
	return max(p.DurationMs*fps/1000, 1)
}

// videoContent returns the content of the MP4 file p describes. Each sample
// of the payload is framed as one length-prefixed NAL unit of filler data
// (AVC type 12, HEVC type 38) carrying the pseudo-random bytes, so that
// demuxers and parsers split the samples cleanly. HEVC samples hold no
// picture; AVC samples also carry a real picture before the filler: an IDR frame of
// flat grey macroblocks in the first sample, then P frames of skipped
// macroblocks, so decoders find a decodable stream.
func videoContent(p VideoParams) (content, error) {
	c := content{seed: p.Seed, nalHeader: []byte{12}}
	if p.Codec == CodecHEVC {
		c.nalHeader = []byte{38 << 1, 1}
	} else if p.Width > 0 && p.Height > 0 {
		c.pics = avcPictures(p.Width, p.Height)
	}
	minFirst, minOther := int64(4+len(c.nalHeader)), int64(4+len(c.nalHeader))
	if len(c.pics) > 0 {
		minFirst += int64(4 + len(c.pics[0]))
		longest := 0
		for _, pic := range c.pics[1:] {
			longest = max(longest, len(pic))
		}
		minOther += int64(4 + longest)
	}
	head, l, err := mp4HeaderLayout(p, minFirst, minOther)
	if err != nil {
		return content{}, err
	}
	c.prefix, c.payload, c.layout = head, l.payload, l
	return c, nil
}

// boxes is a tiny big-endian writer for ISO BMFF boxes.
type boxes struct{ buf []byte }

func (b *boxes) u8(v uint8)   { b.buf = append(b.buf, v) }
func (b *boxes) u16(v uint16) { b.buf = binary.BigEndian.AppendUint16(b.buf, v) }
func (b *boxes) u32(v uint32) { b.buf = binary.BigEndian.AppendUint32(b.buf, v) }
func (b *boxes) u64(v uint64) { b.buf = binary.BigEndian.AppendUint64(b.buf, v) }
func (b *boxes) str(s string) { b.buf = append(b.buf, s...) }
func (b *boxes) zero(n int)   { b.buf = append(b.buf, make([]byte, n)...) }
func (b *boxes) raw(p []byte) { b.buf = append(b.buf, p...) }

// box writes a box of type typ whose content body writes, patching its size.
func (b *boxes) box(typ string, body func()) {
	start := len(b.buf)
	b.u32(0)
	b.str(typ)
	body()
	binary.BigEndian.PutUint32(b.buf[start:], uint32(len(b.buf)-start))
}

// full writes a full box (version and flags) of type typ.
func (b *boxes) full(typ string, version uint8, flags uint32, body func()) {
	b.box(typ, func() {
		b.u32(uint32(version)<<24 | flags&0xFFFFFF)
		body()
	})
}

// matrix writes the identity transformation matrix of mvhd and tkhd.
func (b *boxes) matrix() {
	for _, v := range []uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000} {
		b.u32(v)
	}
}

func writeFtyp(b *boxes, codec string) {
	b.box("ftyp", func() {
		b.str("isom")
		b.u32(0x200)
		b.str("isom")
		b.str("iso2")
		b.str(codec)
		b.str("mp41")
	})
}

func writeMoov(b *boxes, p VideoParams, l sampleLayout, chunkOffset uint32) {
	mediaDuration := uint32(p.DurationMs * mediaTimescale / 1000)
	b.box("moov", func() {
		b.full("mvhd", 0, 0, func() {
			b.u32(0) // creation time
			b.u32(0) // modification time
			b.u32(movieTimescale)
			b.u32(uint32(p.DurationMs))
			b.u32(0x00010000) // rate 1.0
			b.u16(0x0100)     // volume 1.0
			b.zero(2 + 8)
			b.matrix()
			b.zero(24)
			b.u32(2) // next track id
		})
		b.box("trak", func() {
			b.full("tkhd", 0, 3, func() { // enabled, in movie
				b.u32(0)
				b.u32(0)
				b.u32(1) // track id
				b.u32(0)
				b.u32(uint32(p.DurationMs))
				b.zero(8)
				b.u16(0) // layer
				b.u16(0) // alternate group
				b.u16(0) // volume: video
				b.u16(0)
				b.matrix()
				b.u32(uint32(p.Width) << 16) // 16.16 fixed point
				b.u32(uint32(p.Height) << 16)
			})
			b.box("mdia", func() {
				b.full("mdhd", 0, 0, func() {
					b.u32(0)
					b.u32(0)
					b.u32(mediaTimescale)
					b.u32(mediaDuration)
					b.u16(0x55C4) // "und"
					b.u16(0)
				})
				b.full("hdlr", 0, 0, func() {
					b.u32(0)
					b.str("vide")
					b.zero(12)
					b.str("VideoHandler\x00")
				})
				b.box("minf", func() {
					b.full("vmhd", 0, 1, func() { b.zero(8) })
					b.box("dinf", func() {
						b.full("dref", 0, 0, func() {
							b.u32(1)
							b.full("url ", 0, 1, func() {}) // media in this file
						})
					})
					writeStbl(b, p, l, chunkOffset, mediaDuration)
				})
			})
		})
	})
}

// writeStbl writes the sample table: the samples of layout l, all in one
// chunk that starts at chunkOffset (the mdat payload), with durations adding
// up to the media duration; only the first is a sync sample.
func writeStbl(b *boxes, p VideoParams, l sampleLayout, chunkOffset, mediaDuration uint32) {
	samples := l.n
	b.box("stbl", func() {
		b.full("stsd", 0, 0, func() {
			b.u32(1)
			b.box(p.Codec, func() {
				b.zero(6)
				b.u16(1) // data reference index
				b.zero(2 + 2 + 12)
				b.u16(uint16(p.Width))
				b.u16(uint16(p.Height))
				b.u32(0x00480000) // 72 dpi
				b.u32(0x00480000)
				b.u32(0)
				b.u16(1) // frame count
				name := "veo4k providersim"
				b.u8(uint8(len(name)))
				b.str(name)
				b.zero(31 - len(name))
				b.u16(0x0018) // depth
				b.u16(0xFFFF)
				if p.Codec == CodecAVC {
					b.box("avcC", func() { b.raw(avcConfig(p.Width, p.Height)) })
				} else {
					b.box("hvcC", func() { b.raw(hevcConfig()) })
				}
			})
		})
		b.full("stts", 0, 0, func() {
			delta := uint32(int64(mediaDuration) / samples)
			last := mediaDuration - delta*uint32(samples-1)
			if last == delta {
				b.u32(1)
				b.u32(uint32(samples))
				b.u32(delta)
				return
			}
			b.u32(2)
			b.u32(uint32(samples - 1))
			b.u32(delta)
			b.u32(1)
			b.u32(last)
		})
		b.full("stsc", 0, 0, func() {
			b.u32(1)
			b.u32(1) // first chunk
			b.u32(uint32(samples))
			b.u32(1) // sample description index
		})
		b.full("stsz", 0, 0, func() {
			b.u32(0) // sizes vary
			b.u32(uint32(samples))
			for i := range samples {
				b.u32(uint32(l.size(i)))
			}
		})
		b.full("stss", 0, 0, func() {
			b.u32(1)
			b.u32(1)
		})
		b.full("stco", 0, 0, func() {
			b.u32(1)
			b.u32(chunkOffset)
		})
	})
}

// avcConfig returns an AVCDecoderConfigurationRecord (High profile, level
// 5.1) whose SPS declares width×height, so decoders and probes agree with tkhd.
func avcConfig(width, height int) []byte {
	sps := avcSPS(width, height)
	pps := avcPPS()
	c := []byte{1, 100, 0, 51, 0xFF, 0xE1}
	c = binary.BigEndian.AppendUint16(c, uint16(len(sps)))
	c = append(c, sps...)
	c = append(c, 1)
	c = binary.BigEndian.AppendUint16(c, uint16(len(pps)))
	c = append(c, pps...)
	// High profile extension: 4:2:0, 8-bit luma and chroma, no SPS extensions.
	return append(c, 0xFC|1, 0xF8, 0xF8, 0)
}

func avcSPS(width, height int) []byte {
	var w bitWriter
	w.bits(100, 8) // profile_idc: High
	w.bits(0, 8)   // constraint flags
	w.bits(51, 8)  // level_idc 5.1
	w.ue(0)        // seq_parameter_set_id
	w.ue(1)        // chroma_format_idc 4:2:0
	w.ue(0)        // bit_depth_luma_minus8
	w.ue(0)        // bit_depth_chroma_minus8
	w.bits(0, 1)   // qpprime_y_zero_transform_bypass_flag
	w.bits(0, 1)   // seq_scaling_matrix_present_flag
	w.ue(0)        // log2_max_frame_num_minus4
	w.ue(2)        // pic_order_cnt_type
	w.ue(1)        // max_num_ref_frames
	w.bits(0, 1)   // gaps_in_frame_num_value_allowed_flag
	mbW, mbH := (width+15)/16, (height+15)/16
	w.ue(uint32(mbW - 1))
	w.ue(uint32(mbH - 1))
	w.bits(1, 1) // frame_mbs_only_flag
	w.bits(1, 1) // direct_8x8_inference_flag
	cropR, cropB := (mbW*16-width)/2, (mbH*16-height)/2
	if cropR != 0 || cropB != 0 {
		w.bits(1, 1)
		w.ue(0)
		w.ue(uint32(cropR))
		w.ue(0)
		w.ue(uint32(cropB))
	} else {
		w.bits(0, 1)
	}
	w.bits(0, 1) // vui_parameters_present_flag
	return nal(0x67, w.trailing())
}

func avcPPS() []byte {
	var w bitWriter
	w.ue(0)      // pic_parameter_set_id
	w.ue(0)      // seq_parameter_set_id
	w.bits(0, 1) // entropy_coding_mode_flag: CAVLC
	w.bits(0, 1) // bottom_field_pic_order_in_frame_present_flag
	w.ue(0)      // num_slice_groups_minus1
	w.ue(0)      // num_ref_idx_l0_default_active_minus1
	w.ue(0)      // num_ref_idx_l1_default_active_minus1
	w.bits(0, 1) // weighted_pred_flag
	w.bits(0, 2) // weighted_bipred_idc
	w.ue(0)      // pic_init_qp_minus26 (se 0)
	w.ue(0)      // pic_init_qs_minus26 (se 0)
	w.ue(0)      // chroma_qp_index_offset (se 0)
	w.bits(1, 1) // deblocking_filter_control_present_flag
	w.bits(0, 1) // constrained_intra_pred_flag
	w.bits(0, 1) // redundant_pic_cnt_present_flag
	return nal(0x68, w.trailing())
}

// avcPictures returns the AVC slices the samples carry: [0] an IDR frame
// whose macroblocks are all Intra 16x16 DC prediction without residual (a
// flat grey picture), then the P frames with frame_num 1..15,0 whose
// macroblocks are all skipped. Every frame is a reference, so frame_num
// simply counts modulo 16 and picture order type 2 applies.
func avcPictures(width, height int) [][]byte {
	mbs := uint32(((width + 15) / 16) * ((height + 15) / 16))
	var w bitWriter
	w.ue(0)      // first_mb_in_slice
	w.ue(7)      // slice_type: I, all slices
	w.ue(0)      // pic_parameter_set_id
	w.bits(0, 4) // frame_num
	w.ue(0)      // idr_pic_id
	w.bits(0, 1) // no_output_of_prior_pics_flag
	w.bits(0, 1) // long_term_reference_flag
	w.ue(0)      // slice_qp_delta (se 0)
	w.ue(1)      // disable_deblocking_filter_idc: off
	for range mbs {
		w.ue(3)      // mb_type I_16x16_2_0_0: DC prediction, no coded residual
		w.ue(0)      // intra_chroma_pred_mode: DC
		w.ue(0)      // mb_qp_delta (se 0)
		w.bits(1, 1) // Intra16x16DCLevel coeff_token: no coefficients
	}
	pics := [][]byte{nal(0x65, w.trailing())}
	for k := 1; k <= 16; k++ {
		var w bitWriter
		w.ue(0)                 // first_mb_in_slice
		w.ue(5)                 // slice_type: P, all slices
		w.ue(0)                 // pic_parameter_set_id
		w.bits(uint32(k%16), 4) // frame_num
		w.bits(0, 1)            // num_ref_idx_active_override_flag
		w.bits(0, 1)            // ref_pic_list_modification_flag_l0
		w.bits(0, 1)            // adaptive_ref_pic_marking_mode_flag
		w.ue(0)                 // slice_qp_delta
		w.ue(1)                 // disable_deblocking_filter_idc
		w.ue(mbs)               // mb_skip_run: the whole picture
		pics = append(pics, nal(0x41, w.trailing()))
	}
	return pics
}

// nal prefixes the NAL header and inserts emulation-prevention bytes.
func nal(header byte, rbsp []byte) []byte {
	out := []byte{header}
	zeros := 0
	for _, c := range rbsp {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// hevcConfig returns a minimal HEVCDecoderConfigurationRecord: Main profile,
// level 5.1, 4:2:0 8-bit, 4-byte NAL lengths, no parameter-set arrays.
func hevcConfig() []byte {
	return []byte{
		1,             // configurationVersion
		0x01,          // profile space 0, tier 0, profile Main
		0x60, 0, 0, 0, // profile compatibility flags
		0x90, 0, 0, 0, 0, 0, // constraint indicator flags
		153,        // level 5.1
		0xF0, 0x00, // min spatial segmentation
		0xFC,       // parallelism type
		0xFD,       // chroma 4:2:0
		0xF8, 0xF8, // bit depths 8
		0, 0, // average frame rate
		0x0F, // length size 4
		0,    // arrays
	}
}

// bitWriter writes MSB-first bit fields and Exp-Golomb codes.
type bitWriter struct {
	buf  []byte
	nbit int
}

func (w *bitWriter) bits(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		if w.nbit%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.buf[len(w.buf)-1] |= 0x80 >> uint(w.nbit%8)
		}
		w.nbit++
	}
}

func (w *bitWriter) ue(v uint32) {
	x := uint64(v) + 1
	n := 0
	for t := x; t > 1; t >>= 1 {
		n++
	}
	w.bits(0, n)
	w.bits(uint32(x), n+1)
}

// trailing appends the RBSP stop bit and returns the byte-aligned result.
func (w *bitWriter) trailing() []byte {
	w.bits(1, 1)
	return w.buf
}

// content is a file's bytes: a fixed prefix followed by a generated payload,
// optionally framed in samples (see videoContent).
type content struct {
	prefix  []byte
	payload int64
	seed    uint64
	// layout.n > 0 frames the payload in samples: each starts with the
	// length-prefixed picture NAL pics[0] (first sample) or pics[1+(i-1)%16]
	// (sample i) when pics is set, then a 4-byte length and nalHeader that
	// open a filler NAL unit running to the sample's end.
	layout    sampleLayout
	pics      [][]byte
	nalHeader []byte
}

// samplePrefix returns the framing of sample i split in parts.
func (c content) samplePrefix(i int64, lens *[2][4]byte) [][]byte {
	size := c.layout.size(i)
	var pic []byte
	if len(c.pics) > 0 {
		if i == 0 {
			pic = c.pics[0]
		} else {
			pic = c.pics[1+(i-1)%int64(len(c.pics)-1)]
		}
	}
	filler := size - 4 - 4 - int64(len(pic))
	if pic == nil {
		filler = size - 4
	}
	binary.BigEndian.PutUint32(lens[1][:], uint32(filler))
	if pic == nil {
		return [][]byte{lens[1][:], c.nalHeader}
	}
	binary.BigEndian.PutUint32(lens[0][:], uint32(len(pic)))
	return [][]byte{lens[0][:], pic, lens[1][:], c.nalHeader}
}

func (c content) size() int64 { return int64(len(c.prefix)) + c.payload }

// reader returns an independent io.ReadSeeker over the content; it holds one
// 64 KiB block of payload at a time, never the whole file.
func (c content) reader() *contentReader { return &contentReader{c: c, block: -1} }

// contentReader reads a content from any offset.
type contentReader struct {
	c     content
	off   int64
	block int64
	buf   []byte
}

// Read implements io.Reader.
func (r *contentReader) Read(p []byte) (int, error) {
	size := r.c.size()
	if r.off >= size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.off < size {
		if r.off < int64(len(r.c.prefix)) {
			k := copy(p[n:], r.c.prefix[r.off:])
			n += k
			r.off += int64(k)
			continue
		}
		po := r.off - int64(len(r.c.prefix))
		blk := po / payloadBlock
		if blk != r.block {
			r.fill(blk)
		}
		k := copy(p[n:], r.buf[po-blk*payloadBlock:])
		n += k
		r.off += int64(k)
	}
	return n, nil
}

// fill generates payload block blk with a SplitMix64 stream seeded by the
// content's seed and the block number.
func (r *contentReader) fill(blk int64) {
	length := min(int64(payloadBlock), r.c.payload-blk*payloadBlock)
	if cap(r.buf) < payloadBlock {
		r.buf = make([]byte, payloadBlock)
	}
	r.buf = r.buf[:payloadBlock]
	state := r.c.seed ^ (uint64(blk)+1)*0x9E3779B97F4A7C15
	for i := 0; i < payloadBlock; i += 8 {
		state += 0x9E3779B97F4A7C15
		z := state
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		binary.LittleEndian.PutUint64(r.buf[i:], z^z>>31)
	}
	r.buf = r.buf[:length]
	r.frame(blk * payloadBlock)
	r.block = blk
}

// frame overwrites the sample framing that falls in the block starting at
// payload offset start.
func (r *contentReader) frame(start int64) {
	c := r.c
	if c.layout.n <= 0 {
		return
	}
	end := start + int64(len(r.buf))
	// A sample's framing is shorter than the following samples' minimum
	// size, so only the samples starting in the block, and the one before,
	// can reach into it.
	var lens [2][4]byte
	for i := max(c.layout.at(start)-1, 0); i < c.layout.n && c.layout.start(i) < end; i++ {
		pos := c.layout.start(i)
		for _, part := range c.samplePrefix(i, &lens) {
			lo, hi := max(pos, start), min(pos+int64(len(part)), end)
			if lo < hi {
				copy(r.buf[lo-start:hi-start], part[lo-pos:hi-pos])
			}
			pos += int64(len(part))
		}
	}
}

// Seek implements io.Seeker.
func (r *contentReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.c.size() + offset
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.off = abs
	return abs, nil
}
