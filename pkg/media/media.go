// Package media checks that downloaded files are what they claim to be: an
// MP4 video (and its size, duration and codec, read from the box headers
// without loading the file) or a JPEG/PNG/WebP thumbnail.
package media

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"

	mp4 "github.com/abema/go-mp4"
	"golang.org/x/image/webp"
)

// ErrNotMP4 is wrapped by every ProbeMP4 error that means the input is not a
// usable MP4 video (as opposed to an I/O failure of the reader itself).
var ErrNotMP4 = errors.New("not an mp4 video")

// ErrNotImage is wrapped by every ProbeImage error that means the input is
// not a JPEG, PNG or WebP image.
var ErrNotImage = errors.New("not a jpeg, png or webp image")

// VideoInfo describes the first video track of an MP4 file.
type VideoInfo struct {
	// Width and Height are the track's presentation size from tkhd.
	Width, Height int
	// DurationMS is the movie duration (mvhd), or the video track's (mdhd)
	// when the movie header carries none.
	DurationMS int64
	// Codec is the sample entry type from stsd: avc1, avc3, hvc1, hev1, av01, ...
	Codec string
	// Is4K reports 3840×2160 in either orientation.
	Is4K bool
}

// maxBoxes bounds the boxes visited, so a crafted file of tiny boxes cannot
// keep the prober busy; real files have a few hundred.
const maxBoxes = 100_000

// maxFtypSize bounds the ftyp box we parse; real ones are a few dozen bytes.
const maxFtypSize = 64 << 10

type track struct {
	handler       string
	width, height uint32 // 16.16 fixed point
	timescale     uint32
	duration      uint64
	codec         string
}

type probe struct {
	size      int64
	boxes     int
	sawFtyp   bool
	sawMoov   bool
	timescale uint32
	duration  uint64
	tracks    []*track
	cur       *track
}

// ProbeMP4 reads the box structure of an MP4 file and returns its first video
// track's properties. It reads only box headers and the few small boxes it
// needs, seeking over everything else (mdat can be many GiB), so memory use
// does not depend on the file size. Inputs that are not MP4 videos (other
// formats, truncated files, files without a video track) give an error
// wrapping ErrNotMP4 that says why.
func ProbeMP4(r io.ReadSeeker) (VideoInfo, error) {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return VideoInfo{}, fmt.Errorf("finding file size: %w", err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return VideoInfo{}, fmt.Errorf("seeking to start: %w", err)
	}
	var head [8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return VideoInfo{}, fmt.Errorf("%w: file is %d bytes, too short for a box header", ErrNotMP4, size)
	}
	if typ := head[4:8]; !bytes.Equal(typ, []byte("ftyp")) {
		return VideoInfo{}, fmt.Errorf("%w: first box type is %q, want \"ftyp\"", ErrNotMP4, printable(typ))
	}
	if n := binary.BigEndian.Uint32(head[:4]); n < 16 || n > maxFtypSize {
		return VideoInfo{}, fmt.Errorf("%w: implausible ftyp box size %d", ErrNotMP4, n)
	} else if int64(n) > size {
		return VideoInfo{}, fmt.Errorf("%w: truncated: ftyp box declares %d bytes but the file ends at %d", ErrNotMP4, n, size)
	}

	p := &probe{size: size}
	if _, err := mp4.ReadBoxStructure(r, p.handle); err != nil {
		if errors.Is(err, ErrNotMP4) {
			return VideoInfo{}, err
		}
		return VideoInfo{}, fmt.Errorf("%w: malformed box structure: %w", ErrNotMP4, err)
	}
	return p.result()
}

func (p *probe) handle(h *mp4.ReadHandle) (any, error) {
	bi := h.BoxInfo
	if p.boxes++; p.boxes > maxBoxes {
		return nil, fmt.Errorf("%w: more than %d boxes", ErrNotMP4, maxBoxes)
	}
	if bi.Size < bi.HeaderSize {
		return nil, fmt.Errorf("%w: %s box at offset %d has invalid size %d", ErrNotMP4, printable(bi.Type[:]), bi.Offset, bi.Size)
	}
	if len(h.Path) == 1 && bi.Offset+bi.Size > uint64(p.size) {
		return nil, fmt.Errorf("%w: truncated: %s box at offset %d declares %d bytes but the file ends at %d",
			ErrNotMP4, printable(bi.Type[:]), bi.Offset, bi.Size, p.size)
	}
	switch path := pathString(h.Path); path {
	case "ftyp":
		p.sawFtyp = true
		return nil, nil
	case "moov":
		if p.sawMoov {
			return nil, fmt.Errorf("%w: more than one moov box", ErrNotMP4)
		}
		p.sawMoov = true
		return h.Expand()
	case "moov/trak":
		p.cur = &track{}
		p.tracks = append(p.tracks, p.cur)
		_, err := h.Expand()
		p.cur = nil
		return nil, err
	case "moov/trak/mdia", "moov/trak/mdia/minf", "moov/trak/mdia/minf/stbl":
		return h.Expand()
	case "moov/trak/mdia/minf/stbl/stsd":
		if p.cur != nil && p.cur.codec == "" {
			return h.Expand()
		}
		return nil, nil
	case "moov/mvhd":
		box, err := readPayload[*mp4.Mvhd](h)
		if err != nil {
			return nil, err
		}
		p.timescale, p.duration = box.Timescale, box.GetDuration()
	case "moov/trak/tkhd":
		box, err := readPayload[*mp4.Tkhd](h)
		if err != nil {
			return nil, err
		}
		p.cur.width, p.cur.height = box.Width, box.Height
	case "moov/trak/mdia/mdhd":
		box, err := readPayload[*mp4.Mdhd](h)
		if err != nil {
			return nil, err
		}
		p.cur.timescale, p.cur.duration = box.Timescale, box.GetDuration()
	case "moov/trak/mdia/hdlr":
		box, err := readPayload[*mp4.Hdlr](h)
		if err != nil {
			return nil, err
		}
		p.cur.handler = string(box.HandlerType[:])
	default:
		// The first sample entry of stsd names the codec; its payload is
		// not needed.
		if len(h.Path) == 7 && p.cur != nil && p.cur.codec == "" &&
			pathString(h.Path[:6]) == "moov/trak/mdia/minf/stbl/stsd" {
			p.cur.codec = printable(bi.Type[:])
		}
	}
	return nil, nil
}

func (p *probe) result() (VideoInfo, error) {
	if !p.sawMoov {
		return VideoInfo{}, fmt.Errorf("%w: no moov box (file incomplete or not a movie)", ErrNotMP4)
	}
	var v *track
	for _, t := range p.tracks {
		if t.handler == "vide" {
			v = t
			break
		}
	}
	if v == nil {
		return VideoInfo{}, fmt.Errorf("%w: no video track among %d track(s)", ErrNotMP4, len(p.tracks))
	}
	info := VideoInfo{
		Width:  int(v.width >> 16),
		Height: int(v.height >> 16),
		Codec:  v.codec,
	}
	if info.Width == 0 || info.Height == 0 {
		return VideoInfo{}, fmt.Errorf("%w: video track has no presentation size (%dx%d)", ErrNotMP4, info.Width, info.Height)
	}
	if info.Codec == "" {
		return VideoInfo{}, fmt.Errorf("%w: video track has no sample description", ErrNotMP4)
	}
	switch {
	case p.timescale != 0 && p.duration != 0:
		info.DurationMS = toMS(p.duration, p.timescale)
	case v.timescale != 0:
		info.DurationMS = toMS(v.duration, v.timescale)
	}
	info.Is4K = (info.Width == 3840 && info.Height == 2160) || (info.Width == 2160 && info.Height == 3840)
	return info, nil
}

// toMS converts a duration in timescale units to milliseconds, rounding to
// nearest, without overflowing for any uint64 duration.
func toMS(d uint64, timescale uint32) int64 {
	ts := uint64(timescale)
	whole, rest := d/ts, d%ts
	return int64(whole*1000 + (rest*1000+ts/2)/ts)
}

func readPayload[T mp4.IBox](h *mp4.ReadHandle) (T, error) {
	var zero T
	box, _, err := h.ReadPayload()
	if err != nil {
		return zero, fmt.Errorf("%w: reading %s: %w", ErrNotMP4, pathString(h.Path), err)
	}
	t, ok := box.(T)
	if !ok {
		return zero, fmt.Errorf("%w: unexpected payload for %s", ErrNotMP4, pathString(h.Path))
	}
	return t, nil
}

func pathString(p mp4.BoxPath) string {
	var b []byte
	for i, t := range p {
		if i > 0 {
			b = append(b, '/')
		}
		b = append(b, t[:]...)
	}
	return string(b)
}

// printable renders a four-character code, escaping bytes that are not
// printable ASCII so error messages about binary junk stay readable.
func printable(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			out = fmt.Appendf(out, "\\x%02x", c)
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

// ImageInfo describes a thumbnail image.
type ImageInfo struct {
	// Format is "jpeg", "png" or "webp".
	Format string
	// ContentType is the matching MIME type.
	ContentType string
	// Width and Height are in pixels.
	Width, Height int
}

// ProbeImage identifies a JPEG, PNG or WebP image by its magic bytes and
// reads its dimensions from the header, without decoding pixels. Anything
// else gives an error wrapping ErrNotImage.
func ProbeImage(r io.Reader) (ImageInfo, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(12)
	if err != nil && !errors.Is(err, io.EOF) {
		return ImageInfo{}, fmt.Errorf("reading image header: %w", err)
	}
	var (
		info   ImageInfo
		decode func(io.Reader) (image.Config, error)
	)
	switch {
	case bytes.HasPrefix(head, []byte{0xff, 0xd8, 0xff}):
		info, decode = ImageInfo{Format: "jpeg", ContentType: "image/jpeg"}, jpeg.DecodeConfig
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		info, decode = ImageInfo{Format: "png", ContentType: "image/png"}, png.DecodeConfig
	case len(head) >= 12 && bytes.Equal(head[:4], []byte("RIFF")) && bytes.Equal(head[8:12], []byte("WEBP")):
		info, decode = ImageInfo{Format: "webp", ContentType: "image/webp"}, webp.DecodeConfig
	default:
		return ImageInfo{}, fmt.Errorf("%w: unrecognised leading bytes %q", ErrNotImage, printable(head))
	}
	cfg, err := decode(br)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("%w: invalid %s header: %w", ErrNotImage, info.Format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return ImageInfo{}, fmt.Errorf("%w: %s has no size (%dx%d)", ErrNotImage, info.Format, cfg.Width, cfg.Height)
	}
	info.Width, info.Height = cfg.Width, cfg.Height
	return info, nil
}
