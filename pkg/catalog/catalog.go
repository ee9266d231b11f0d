// Package catalog records what veo4k knows about each entry (one task id and
// video index): its status, the provider's message, and its stored files.
//
// The status rules of DESIGN.md live here, in Entry.To, so that every backend
// and every caller applies the same ones: ready is final, a success after a
// failure upgrades, a failure after ready changes nothing.
package catalog

import (
	"context"
	"errors"
	"time"
)

// Status is where an entry stands.
type Status string

// The statuses of an entry.
const (
	Pending     Status = "pending"
	Downloading Status = "downloading"
	Ready       Status = "ready"
	Unavailable Status = "unavailable"
	Failed      Status = "failed"
)

// Valid reports whether s is one of the statuses above.
func (s Status) Valid() bool {
	switch s {
	case Pending, Downloading, Ready, Unavailable, Failed:
		return true
	}
	return false
}

// ErrNotFound is returned for an entry the catalog does not have.
var ErrNotFound = errors.New("catalog: entry not found")

// Key identifies an entry.
type Key struct {
	TaskID string
	Index  int
}

// Kind is what a stored file is.
type Kind string

// The kinds of file.
const (
	Video Kind = "video"
	Image Kind = "image"
)

// File is one stored, verified file of an entry.
type File struct {
	Kind        Kind   `json:"kind"`
	Name        string `json:"name"`
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"contentType"`
	SourceURL   string `json:"sourceUrl"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	DurationMS  int64  `json:"durationMs"`
	// Codec and Is4K are set for videos only.
	Codec string `json:"codec,omitempty"`
	Is4K  *bool  `json:"is4K,omitempty"`
	// Location is where the file is stored, relative to the storage root.
	Location string `json:"-"`
}

// Entry is the catalog's record of one (task id, index).
type Entry struct {
	TaskID     string    `json:"taskId"`
	Index      int       `json:"index"`
	Status     Status    `json:"status"`
	Message    string    `json:"message"`
	ReceivedAt time.Time `json:"receivedAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
	Files      []File    `json:"files"`
	// Attempts counts the fetch attempts made for the entry.
	Attempts int `json:"attempts"`
	// Announced lists the statuses whose event (VideoCataloged for ready,
	// VideoFailed for unavailable and failed) is known to be published, so a
	// redelivered message republishes only what may have been lost.
	Announced []Status `json:"-"`
}

// Key returns the entry's key.
func (e *Entry) Key() Key { return Key{TaskID: e.TaskID, Index: e.Index} }

// To moves the entry to status s with message msg, following the rules:
// ready is final (nothing moves it), and any other status may move anywhere.
// It reports whether the entry changed.
func (e *Entry) To(s Status, msg string) bool {
	if e.Status == Ready {
		return false
	}
	if e.Status == s && e.Message == msg {
		return false
	}
	e.Status, e.Message = s, msg
	return true
}

// IsAnnounced reports whether the event for status s has been published.
func (e *Entry) IsAnnounced(s Status) bool {
	for _, a := range e.Announced {
		if a == s {
			return true
		}
	}
	return false
}

// Announce records that the event for status s has been published.
func (e *Entry) Announce(s Status) {
	if !e.IsAnnounced(s) {
		e.Announced = append(e.Announced, s)
	}
}

// ListQuery selects a page of entries, newest (by ReceivedAt) first.
type ListQuery struct {
	// Status filters on one status; empty means all.
	Status Status
	// Limit is the page size; the backend caps it (see MaxLimit) and 0 means DefaultLimit.
	Limit int
	// Cursor is the previous page's NextCursor; empty for the first page.
	Cursor string
}

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Page is one page of entries.
type Page struct {
	Items []Entry `json:"items"`
	// NextCursor continues the listing; empty on the last page.
	NextCursor string `json:"nextCursor"`
}

// ErrBadCursor is returned for a cursor the catalog did not make.
var ErrBadCursor = errors.New("catalog: invalid cursor")

// Catalog stores entries. Implementations must be safe for concurrent use by
// several goroutines and by several processes sharing the same database.
type Catalog interface {
	// Get returns one entry, or ErrNotFound.
	Get(ctx context.Context, k Key) (Entry, error)
	// List returns a page of entries, newest first.
	List(ctx context.Context, q ListQuery) (Page, error)
	// Update reads the entry (a new Pending entry with ReceivedAt now when it
	// does not exist), calls fn, and stores what fn left, all in one
	// transaction: concurrent Updates of one entry are serialised. When fn
	// returns an error nothing is stored and Update returns that error.
	// UpdatedAt is set by Update. fn may set ReceivedAt of a new entry to an
	// earlier time (when its callback was received); later it is fixed.
	Update(ctx context.Context, k Key, fn func(e *Entry) error) (Entry, error)
	// Ping checks that the catalog can be reached.
	Ping(ctx context.Context) error
	// Close releases the catalog.
	Close() error
}
