package download

import (
	"errors"
	"time"
)

// Error is the error every failed Fetch returns. Permanent tells the caller
// whether trying again later can help: a permanent failure (refused URL or
// address, 4xx, too large, Verify rejected the file) should fail the entry at
// once; a transient one (network, timeouts, 5xx, 429, short body, a download
// of the same file in progress elsewhere) should be retried later, after
// RetryAfter when the server named a delay.
type Error struct {
	// Permanent reports that retrying cannot succeed.
	Permanent bool
	// Reason says what went wrong in words fit for a catalog entry.
	Reason string
	// RetryAfter is the delay the server asked for (429/503), zero if none.
	RetryAfter time.Duration
	// Err is the underlying error, if any.
	Err error
}

// Error returns the reason, followed by the underlying error when there is one.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether err is, or wraps, a permanent *Error.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

func permanent(reason string, err error) *Error {
	return &Error{Permanent: true, Reason: reason, Err: err}
}

func transient(reason string, err error) *Error {
	return &Error{Reason: reason, Err: err}
}
