package providersim

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/abema/go-mp4"
)

func TestGeneratedMP4(t *testing.T) {
	t.Parallel()
	sim, _ := startSim(t, Config{})
	tests := []struct {
		name          string
		spec          TaskSpec
		width, height int
		codec         string
	}{
		{"4k avc", TaskSpec{TaskID: "mp4-4k"}, 3840, 2160, CodecAVC},
		{"1080p", TaskSpec{TaskID: "mp4-1080", Width: 1920, Height: 1080}, 1920, 1080, CodecAVC},
		{"portrait", TaskSpec{TaskID: "mp4-portrait", Width: 2160, Height: 3840}, 2160, 3840, CodecAVC},
		{"hevc", TaskSpec{TaskID: "mp4-hevc", Codec: CodecHEVC, DurationMs: 5000}, 3840, 2160, CodecHEVC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.spec.VideoBytes = 1 << 20
			task, err := sim.AddTask(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			resp, body, err := get(t, task.VideoURLs[0], nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := resp.StatusCode, 200; got != want {
				t.Fatalf("status %d, want %d", got, want)
			}
			if got, want := int64(len(body)), task.Files[0].Size; got != want || got != 1<<20 {
				t.Fatalf("body %d bytes, advertised %d, want %d", got, want, 1<<20)
			}
			if got, want := resp.Header.Get("Content-Type"), "video/mp4"; got != want {
				t.Errorf("Content-Type %q, want %q", got, want)
			}
			if got, want := sha(body), task.Files[0].SHA256; got != want {
				t.Errorf("sha256 %s, advertised %s", got, want)
			}
			r := bytes.NewReader(body)
			info, err := mp4.Probe(r)
			if err != nil {
				t.Fatalf("probe: %v", err)
			}
			if got, want := len(info.Tracks), 1; got != want {
				t.Fatalf("%d tracks, want %d", got, want)
			}
			tr := info.Tracks[0]
			durMs := tc.spec.DurationMs
			if durMs == 0 {
				durMs = DefaultDurationMs
			}
			if got, want := int64(info.Duration)*1000/int64(info.Timescale), durMs; got != want {
				t.Errorf("movie duration %d ms, want %d", got, want)
			}
			if got, want := int64(tr.Duration)*1000/int64(tr.Timescale), durMs; got != want {
				t.Errorf("track duration %d ms, want %d", got, want)
			}
			// Samples must cover the mdat payload exactly, starting at the chunk offset.
			var total uint64
			for _, s := range tr.Samples {
				total += uint64(s.Size)
			}
			if got, want := len(tr.Chunks), 1; got != want {
				t.Fatalf("%d chunks, want %d", got, want)
			}
			if got, want := tr.Chunks[0].DataOffset+total, uint64(len(body)); got != want {
				t.Errorf("chunk offset + sample sizes = %d, want file size %d", got, want)
			}
			checkNALFraming(t, body, tr, tc.codec)
			if tc.codec == CodecAVC {
				if got, want := tr.Codec, mp4.CodecAVC1; got != want {
					t.Errorf("codec %v, want avc1", got)
				}
				if tr.AVC == nil || int(tr.AVC.Width) != tc.width || int(tr.AVC.Height) != tc.height {
					t.Errorf("avc1 sample entry %+v, want %dx%d", tr.AVC, tc.width, tc.height)
				}
			} else {
				boxes, err := mp4.ExtractBox(r, nil, mp4.BoxPath{mp4.BoxTypeMoov(), mp4.BoxTypeTrak(), mp4.BoxTypeMdia(),
					mp4.BoxTypeMinf(), mp4.BoxTypeStbl(), mp4.BoxTypeStsd(), mp4.StrToBoxType("hvc1")})
				if err != nil || len(boxes) != 1 {
					t.Errorf("hvc1 sample entry: %d boxes, %v", len(boxes), err)
				}
			}
			tkhd, err := mp4.ExtractBoxWithPayload(r, nil, mp4.BoxPath{mp4.BoxTypeMoov(), mp4.BoxTypeTrak(), mp4.BoxTypeTkhd()})
			if err != nil || len(tkhd) != 1 {
				t.Fatalf("tkhd: %d boxes, %v", len(tkhd), err)
			}
			th := tkhd[0].Payload.(*mp4.Tkhd)
			if got, want := th.GetWidth(), float64(tc.width); got != want {
				t.Errorf("tkhd width %v, want %v", got, want)
			}
			if got, want := th.GetHeight(), float64(tc.height); got != want {
				t.Errorf("tkhd height %v, want %v", got, want)
			}
			hdlr, err := mp4.ExtractBoxWithPayload(r, nil, mp4.BoxPath{mp4.BoxTypeMoov(), mp4.BoxTypeTrak(), mp4.BoxTypeMdia(), mp4.BoxTypeHdlr()})
			if err != nil || len(hdlr) != 1 {
				t.Fatalf("hdlr: %d boxes, %v", len(hdlr), err)
			}
			if got, want := string(hdlr[0].Payload.(*mp4.Hdlr).HandlerType[:]), "vide"; got != want {
				t.Errorf("handler %q, want %q", got, want)
			}
			ffprobeCheck(t, body, tc.width, tc.height, tc.codec)
		})
	}
}

// checkNALFraming walks every sample as 4-byte-length-prefixed NAL units:
// they must fill it exactly; AVC samples start with a picture (IDR first,
// then P slices), every sample ends with a filler NAL unit.
func checkNALFraming(t *testing.T, body []byte, tr *mp4.Track, codec string) {
	t.Helper()
	off := tr.Chunks[0].DataOffset
	for i, s := range tr.Samples {
		sample := body[off : off+uint64(s.Size)]
		off += uint64(s.Size)
		var types []int
		for len(sample) > 0 {
			if len(sample) < 5 {
				t.Fatalf("sample %d: %d stray bytes", i, len(sample))
			}
			n := binary.BigEndian.Uint32(sample)
			if uint64(n) > uint64(len(sample)-4) {
				t.Fatalf("sample %d: NAL length %d overruns the sample (%d left)", i, n, len(sample)-4)
			}
			typ := int(sample[4] & 0x1F)
			if codec == CodecHEVC {
				typ = int(sample[4] >> 1 & 0x3F)
			}
			types = append(types, typ)
			sample = sample[4+n:]
		}
		want := "[38]"
		if codec == CodecAVC {
			want = map[bool]string{true: "[5 12]", false: "[1 12]"}[i == 0]
		}
		if got := fmt.Sprint(types); got != want {
			t.Fatalf("sample %d: NAL types %s, want %s", i, got, want)
		}
	}
}

// ffprobeCheck confirms the file with ffprobe when it is installed; the
// go-mp4 checks above stand on their own without it.
func ffprobeCheck(t *testing.T, body []byte, width, height int, codec string) {
	t.Helper()
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Log("ffprobe not installed: checked with go-mp4 only")
		return
	}
	path := filepath.Join(t.TempDir(), "v.mp4")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-v", "error", "-show_streams", "-show_format", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var res struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			PixFmt    string `json:"pix_fmt"`
			NbFrames  string `json:"nb_frames"`
		} `json:"streams"`
		Format struct {
			FormatName string `json:"format_name"`
			Duration   string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	if len(res.Streams) != 1 {
		t.Fatalf("ffprobe found %d streams: %s", len(res.Streams), out)
	}
	want := map[string]string{CodecAVC: "h264", CodecHEVC: "hevc"}[codec]
	s := res.Streams[0]
	if s.CodecName != want || s.Width != width || s.Height != height {
		t.Errorf("ffprobe: %s %dx%d, want %s %dx%d", s.CodecName, s.Width, s.Height, want, width, height)
	}
	if d, err := strconv.ParseFloat(res.Format.Duration, 64); err != nil || d <= 0 {
		t.Errorf("ffprobe duration %q", res.Format.Duration)
	}
	if codec != CodecAVC {
		return
	}
	// AVC files carry real pictures: the decoder knows the pixel format and
	// decodes every frame without an error.
	if s.PixFmt != "yuv420p" {
		t.Errorf("ffprobe pix_fmt %q, want yuv420p", s.PixFmt)
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return
	}
	var stderr bytes.Buffer
	cmd := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-i", path, "-f", "null", "-")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("ffmpeg decode: %v: %s", err, stderr.Bytes())
	}
}

func TestMP4HeaderOver4GiB(t *testing.T) {
	t.Parallel()
	const size = 5 << 30
	head, payload, err := mp4Header(VideoParams{Size: size, Width: 3840, Height: 2160, Codec: CodecAVC, DurationMs: 8000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := int64(len(head))+payload, int64(size); got != want {
		t.Fatalf("header+payload = %d, want %d", got, want)
	}
	info, err := mp4.Probe(content{prefix: head, payload: payload, seed: 1}.reader())
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	var total uint64
	for _, s := range info.Tracks[0].Samples {
		total += uint64(s.Size)
	}
	if got, want := info.Tracks[0].Chunks[0].DataOffset+total, uint64(size); got != want {
		t.Errorf("samples end at %d, want %d", got, want)
	}
}

func TestMP4HeaderRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    VideoParams
	}{
		{"too small", VideoParams{Size: 100, Width: 3840, Height: 2160, Codec: CodecAVC, DurationMs: 8000}},
		{"no width", VideoParams{Size: 1 << 20, Height: 2160, Codec: CodecAVC, DurationMs: 8000}},
		{"codec", VideoParams{Size: 1 << 20, Width: 3840, Height: 2160, Codec: "vp09", DurationMs: 8000}},
		{"duration", VideoParams{Size: 1 << 20, Width: 3840, Height: 2160, Codec: CodecAVC}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := mp4Header(tc.p); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if _, _, err := mp4Header(tests[0].p); !errors.Is(err, errTooSmall) {
		t.Errorf("got %v, want errTooSmall", err)
	}
}

// TestContentReaderSeek checks that reading from any offset yields the same
// bytes as a sequential read.
func TestContentReaderSeek(t *testing.T) {
	t.Parallel()
	c := content{prefix: []byte("header"), payload: 3*payloadBlock + 123, seed: 42}
	all, err := io.ReadAll(c.reader())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := int64(len(all)), c.size(); got != want {
		t.Fatalf("read %d bytes, want %d", got, want)
	}
	for _, off := range []int64{0, 3, 6, payloadBlock - 1, payloadBlock + 6, 2*payloadBlock + 5, c.size() - 1} {
		r := c.reader()
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, _ := io.ReadFull(r, buf)
		if !bytes.Equal(buf[:n], all[off:off+int64(n)]) {
			t.Errorf("bytes at %d differ from a sequential read", off)
		}
	}
	other, _ := io.ReadAll(content{prefix: []byte("header"), payload: c.payload, seed: 43}.reader())
	if bytes.Equal(all, other) {
		t.Error("different seeds gave the same payload")
	}
}

// TestLargeVirtualFile serves a 1 GiB file: the length is right, the last
// KiB comes from a Range request, and the process never holds the file.
// Not parallel, so that the allocation count is this test's own.
func TestLargeVirtualFile(t *testing.T) {
	sim, _ := startSim(t, Config{})
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	task, err := sim.AddTask(TaskSpec{TaskID: "big", VideoBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	u := task.VideoURLs[0]
	resp, body, err := get(t, u, map[string]string{"Range": "bytes=-1024"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.StatusCode, 206; got != want {
		t.Fatalf("status %d, want %d", got, want)
	}
	if got, want := resp.Header.Get("Content-Range"), "bytes 1073740800-1073741823/1073741824"; got != want {
		t.Errorf("Content-Range %q, want %q", got, want)
	}
	if got, want := len(body), 1024; got != want {
		t.Errorf("body %d bytes, want %d", got, want)
	}
	head, err := http.Head(u)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if got, want := head.ContentLength, int64(1<<30); got != want {
		t.Errorf("HEAD Content-Length %d, want %d", got, want)
	}
	if got, want := sim.FileStats(u).BytesServed, int64(1024); got != want {
		t.Errorf("bytes served %d, want %d", got, want)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.TotalAlloc) - int64(before.TotalAlloc); grown > 64<<20 {
		t.Errorf("allocated %d MiB for a 1 GiB file", grown>>20)
	}
	if task.Files[0].SHA256 != "" {
		t.Error("a 1 GiB file was hashed eagerly")
	}
}

// BenchmarkContentRead measures how fast a video's bytes are generated.
func BenchmarkContentRead(b *testing.B) {
	c, err := videoContent(VideoParams{Size: 256 << 20, Width: 3840, Height: 2160, Codec: CodecAVC, DurationMs: 8000, Seed: 7})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	b.SetBytes(c.size())
	for b.Loop() {
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c.reader()}, buf); err != nil {
			b.Fatal(err)
		}
	}
}
