package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testdata(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join("..", "..", "testdata", "media", name)
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testdata(t, name))
	if err != nil {
		t.Fatalf("reading test file: %v", err)
	}
	return b
}

func TestProbeMP4(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file   string
		width  int
		height int
		codec  string
		is4K   bool
	}{
		{"uhd-h264.mp4", 3840, 2160, "avc1", true},
		{"uhd-hevc-hvc1.mp4", 3840, 2160, "hvc1", true},
		{"uhd-portrait-h264.mp4", 2160, 3840, "avc1", true},
		{"fhd-h264.mp4", 1920, 1080, "avc1", false}, // audio track first
		{"uhd-faststart.mp4", 3840, 2160, "avc1", true},
		{"uhd-moov-at-end.mp4", 3840, 2160, "avc1", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			f, err := os.Open(testdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			info, err := ProbeMP4(f)
			if err != nil {
				t.Fatalf("ProbeMP4: %v", err)
			}
			if got, want := info.Width, tt.width; got != want {
				t.Errorf("Width = %d, want %d", got, want)
			}
			if got, want := info.Height, tt.height; got != want {
				t.Errorf("Height = %d, want %d", got, want)
			}
			if got, want := info.Codec, tt.codec; got != want {
				t.Errorf("Codec = %q, want %q", got, want)
			}
			if got, want := info.Is4K, tt.is4K; got != want {
				t.Errorf("Is4K = %v, want %v", got, want)
			}
			// 1 s sources; the muxer may round to a frame boundary.
			if info.DurationMS < 900 || info.DurationMS > 1100 {
				t.Errorf("DurationMS = %d, want about 1000", info.DurationMS)
			}
		})
	}
}

func TestProbeMP4Layouts(t *testing.T) {
	t.Parallel()
	// The two layouts must be told apart by the prober's seeking, not
	// by luck: make sure the test files really differ as named.
	for _, tt := range []struct {
		file     string
		moovPos  int
		mdatPos  int
		moovLast bool
	}{
		{file: "uhd-faststart.mp4"},
		{file: "uhd-moov-at-end.mp4", moovLast: true},
	} {
		b := readTestdata(t, tt.file)
		moov, mdat := bytes.Index(b, []byte("moov")), bytes.Index(b, []byte("mdat"))
		if got, want := moov > mdat, tt.moovLast; got != want {
			t.Errorf("%s: moov after mdat = %v, want %v", tt.file, got, want)
		}
	}
}

func TestProbeMP4NotMP4(t *testing.T) {
	t.Parallel()
	uhd := readTestdata(t, "uhd-h264.mp4")
	moovAtEnd := readTestdata(t, "uhd-moov-at-end.mp4")
	tests := []struct {
		name   string
		input  []byte
		reason string
	}{
		{"empty", nil, "too short"},
		{"text", []byte("hello, this is a plain text file, not a movie\n"), `first box type is "o, t"`},
		{"html error page", []byte("<!DOCTYPE html><html><body>403 Forbidden</body></html>"), "want \"ftyp\""},
		{"jpeg", readTestdata(t, "thumb.jpg"), "want \"ftyp\""},
		{"random bytes", bytes.Repeat([]byte{0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01}, 64), "want \"ftyp\""},
		{"truncated header", uhd[:20], "truncated"},
		{"truncated in mdat, moov at end", moovAtEnd[:len(moovAtEnd)/2], "truncated"},
		{"truncated in moov", uhd[:len(uhd)-100], "truncated"},
		{"audio only", readTestdata(t, "audio-only.mp4"), "no video track"},
		{"ftyp only", uhd[:binarySize(uhd)], "no moov box"},
		{"box with invalid size", append(append([]byte{}, uhd[:binarySize(uhd)]...), 0, 0, 0, 3, 'j', 'u', 'n', 'k', 0, 0), "invalid size 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ProbeMP4(bytes.NewReader(tt.input))
			if !errors.Is(err, ErrNotMP4) {
				t.Fatalf("ProbeMP4 error = %v, want ErrNotMP4", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
		})
	}
}

// binarySize returns the size of the first box in b.
func binarySize(b []byte) int {
	return int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
}

func TestProbeImage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, format, contentType string
		width, height             int
	}{
		{"thumb.jpg", "jpeg", "image/jpeg", 640, 360},
		{"thumb.png", "png", "image/png", 320, 180},
		{"thumb.webp", "webp", "image/webp", 400, 224},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			info, err := ProbeImage(bytes.NewReader(readTestdata(t, tt.file)))
			if err != nil {
				t.Fatalf("ProbeImage: %v", err)
			}
			want := ImageInfo{Format: tt.format, ContentType: tt.contentType, Width: tt.width, Height: tt.height}
			if got := info; got != want {
				t.Errorf("ProbeImage = %+v, want %+v", got, want)
			}
		})
	}
}

func TestProbeImageNotImage(t *testing.T) {
	t.Parallel()
	jpg := readTestdata(t, "thumb.jpg")
	tests := []struct {
		name  string
		input []byte
	}{
		{"empty", nil},
		{"text", []byte("not an image at all")},
		{"mp4", readTestdata(t, "uhd-h264.mp4")},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")},
		{"jpeg magic then junk", append([]byte{0xff, 0xd8, 0xff}, bytes.Repeat([]byte{0}, 32)...)},
		{"truncated jpeg", jpg[:4]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ProbeImage(bytes.NewReader(tt.input)); !errors.Is(err, ErrNotImage) {
				t.Errorf("ProbeImage error = %v, want ErrNotImage", err)
			}
		})
	}
}

// virtualFile is an io.ReadSeeker over head, then size zero bytes, then tail,
// counting the bytes actually read, so a multi-GiB MP4 can be probed without
// existing anywhere.
type virtualFile struct {
	head, tail []byte
	zeros      int64
	off, read  int64
}

func (v *virtualFile) size() int64 { return int64(len(v.head)) + v.zeros + int64(len(v.tail)) }

func (v *virtualFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case 0:
	case 1:
		offset += v.off
	case 2:
		offset += v.size()
	}
	if offset < 0 {
		return 0, errors.New("negative offset")
	}
	v.off = offset
	return offset, nil
}

func (v *virtualFile) Read(p []byte) (int, error) {
	h, z := int64(len(v.head)), v.zeros
	var n int
	switch {
	case v.off >= v.size():
		return 0, io.EOF
	case v.off < h:
		n = copy(p, v.head[v.off:])
	case v.off < h+z:
		n = int(min(int64(len(p)), h+z-v.off))
		clear(p[:n])
	default:
		n = copy(p, v.tail[v.off-h-z:])
	}
	v.off += int64(n)
	v.read += int64(n)
	return n, nil
}

func TestProbeMP4SeeksPastHugeMdat(t *testing.T) {
	t.Parallel()
	src := readTestdata(t, "uhd-moov-at-end.mp4")
	ftypEnd := binarySize(src)
	moov := bytes.Index(src, []byte("moov")) - 4
	const mdatPayload = 8 << 30 // 8 GiB of virtual media data
	head := append([]byte{}, src[:ftypEnd]...)
	hdr := make([]byte, 16)
	binary.BigEndian.PutUint32(hdr[0:], 1) // 64-bit size follows
	copy(hdr[4:], "mdat")
	binary.BigEndian.PutUint64(hdr[8:], 16+mdatPayload)
	head = append(head, hdr...)
	v := &virtualFile{head: head, zeros: mdatPayload, tail: src[moov:]}

	info, err := ProbeMP4(v)
	if err != nil {
		t.Fatalf("ProbeMP4: %v", err)
	}
	if got, want := info.Width, 3840; got != want {
		t.Errorf("Width = %d, want %d", got, want)
	}
	if got, limit := v.read, int64(1<<20); got > limit {
		t.Errorf("read %d bytes of an 8 GiB file, want at most %d", got, limit)
	}
}
