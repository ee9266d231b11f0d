package catalog

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// cursor is the sort key of the last entry of a page: the next page starts
// strictly after it, so entries added meanwhile (newer, hence earlier in the
// order) neither repeat nor shift what follows.
type cursor struct {
	// ReceivedAt is in Unix nanoseconds (UTC).
	ReceivedAt int64  `json:"r"`
	TaskID     string `json:"t"`
	Index      int    `json:"i"`
}

// encodeCursor makes the opaque form handed to clients: base64url of JSON.
func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c) // cannot fail: plain fields
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reverses encodeCursor; anything else is ErrBadCursor.
func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, fmt.Errorf("%w: %w", ErrBadCursor, err)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return cursor{}, fmt.Errorf("%w: %w", ErrBadCursor, err)
	}
	if c.TaskID == "" || c.Index < 0 || c.ReceivedAt <= 0 {
		return cursor{}, fmt.Errorf("%w: incomplete sort key", ErrBadCursor)
	}
	return c, nil
}
