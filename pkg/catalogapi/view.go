package catalogapi

import (
	"time"

	"github.com/veo4k/veo4k/pkg/catalog"
)

// The JSON shapes below are the HTTP contract (DESIGN.md); they are declared
// here, not taken from the catalog's types, so that a change to what the
// catalog stores cannot change what clients see.

// entryView is one catalog entry as the API shows it.
type entryView struct {
	TaskID     string     `json:"taskId"`
	Index      int        `json:"index"`
	Status     string     `json:"status"`
	Message    string     `json:"message"`
	ReceivedAt time.Time  `json:"receivedAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	Files      []fileView `json:"files"`
}

// fileView is one stored file; Codec and Is4K are present for videos only.
type fileView struct {
	Kind        string  `json:"kind"`
	Name        string  `json:"name"`
	Bytes       int64   `json:"bytes"`
	SHA256      string  `json:"sha256"`
	ContentType string  `json:"contentType"`
	SourceURL   string  `json:"sourceUrl"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	DurationMS  int64   `json:"durationMs"`
	Codec       *string `json:"codec,omitempty"`
	Is4K        *bool   `json:"is4K,omitempty"`
}

// pageView is one page of GET /v1/videos.
type pageView struct {
	Items      []entryView `json:"items"`
	NextCursor string      `json:"nextCursor"`
}

func viewOf(e catalog.Entry) entryView {
	v := entryView{
		TaskID: e.TaskID, Index: e.Index, Status: string(e.Status), Message: e.Message,
		ReceivedAt: e.ReceivedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(),
		Files: make([]fileView, 0, len(e.Files)),
	}
	for _, f := range e.Files {
		fv := fileView{
			Kind: string(f.Kind), Name: f.Name, Bytes: f.Bytes, SHA256: f.SHA256,
			ContentType: f.ContentType, SourceURL: f.SourceURL, Width: f.Width, Height: f.Height,
			DurationMS: f.DurationMS,
		}
		if f.Kind == catalog.Video {
			codec := f.Codec
			is4K := is4KSize(f.Width, f.Height)
			if f.Is4K != nil {
				is4K = *f.Is4K
			}
			fv.Codec, fv.Is4K = &codec, &is4K
		}
		v.Files = append(v.Files, fv)
	}
	return v
}

// is4KSize reports 3840×2160 either way round (DESIGN.md).
func is4KSize(w, h int) bool {
	return (w == 3840 && h == 2160) || (w == 2160 && h == 3840)
}
