// Package callback parses and validates the provider's "4K video ready"
// callback bodies (PROVIDER.md §1).
//
// Parsing is split in two steps that match the ingress's order of checks
// (DESIGN.md, "Ingress HTTP contract"): Parse checks the JSON shape, the types
// and the body's task id, which must be known before the signature (it covers
// the task id) can be checked; Validate checks the rest (URL syntax, a success
// carrying at least one video URL) once the signature has been accepted.
//
// Both spellings the provider's pages use are accepted (camelCase and
// snake_case; URLs under data.info or directly under data), unknown fields are
// ignored, and a body with the wrong types is refused rather than guessed at.
package callback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
)

// CodeSuccess is the provider's code of a successful 4K callback; every other
// code is a failure.
const CodeSuccess = 200

// MaxTaskIDLen is the longest task id accepted.
const MaxTaskIDLen = 128

// codeMissing marks a body without a code: no int32 can equal it.
const codeMissing = math.MaxInt64

// Errors Parse and Validate return, wrapped with the detail of what was wrong.
// Every one of them means the callback is malformed (HTTP 400); they are
// distinct so that callers can count and report them separately.
var (
	// ErrSyntax: the body is not a JSON object.
	ErrSyntax = errors.New("body is not a JSON object")
	// ErrType: a known field has the wrong JSON type, or a required one is missing.
	ErrType = errors.New("wrong field type")
	// ErrTaskID: a task id does not match ^[A-Za-z0-9_-]{1,128}$, or two spellings disagree.
	ErrTaskID = errors.New("invalid task id")
	// ErrURL: a URL is not an absolute http or https URL.
	ErrURL = errors.New("invalid url")
	// ErrNoVideo: a success callback (code 200) carries no video URL.
	ErrNoVideo = errors.New("success callback without any video url")
)

// Callback is a parsed callback body.
type Callback struct {
	// Code is the provider's result code: CodeSuccess or a failure.
	Code int32
	// Msg is the provider's message, verbatim.
	Msg string
	// TaskID is the body's task id (data.taskId or data.task_id); empty when
	// the body carries none (a failure with data: null).
	TaskID string
	// VideoURLs are the video URLs from every accepted spelling, in order,
	// without repeats.
	VideoURLs []string
	// ImageURLs are the image (thumbnail) URLs, likewise.
	ImageURLs []string
}

// Success reports whether the provider says the 4K video is ready.
func (c *Callback) Success() bool { return c.Code == CodeSuccess }

// body mirrors the wire format. encoding/json refuses wrong types for typed
// fields (a string where an object or a number is expected), which is what
// "wrong types → error" asks for.
type body struct {
	// Code starts at codeMissing, a value no int32 code can take, so that
	// an absent or null code is told apart without a pointer.
	Code int64  `json:"code"`
	Msg  string `json:"msg"`
	Data *data  `json:"data"`
}

type data struct {
	TaskID      string   `json:"taskId"`
	TaskIDSnake string   `json:"task_id"`
	Info        *info    `json:"info"`
	ResultURLs  []string `json:"resultUrls"`
	ResultSnake []string `json:"result_urls"`
	ImageURLs   []string `json:"imageUrls"`
	ImageSnake  []string `json:"image_urls"`
}

type info struct {
	ResultURLs  []string `json:"resultUrls"`
	ResultSnake []string `json:"result_urls"`
	ImageURLs   []string `json:"imageUrls"`
	ImageSnake  []string `json:"image_urls"`
}

// Parse decodes b and checks its shape: a JSON object with a numeric code, a
// string msg, data an object or null, known fields of the right types, and a
// task id (when the body has one) matching ^[A-Za-z0-9_-]{1,128}$. It does not
// check the URLs: see Validate.
func Parse(b []byte) (Callback, error) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return Callback{}, ErrSyntax
	}
	w := body{Code: codeMissing}
	if err := json.Unmarshal(b, &w); err != nil {
		return Callback{}, decodeError(err)
	}
	switch {
	case w.Code == codeMissing:
		return Callback{}, fmt.Errorf("%w: code is missing or null", ErrType)
	case w.Code < math.MinInt32 || w.Code > math.MaxInt32:
		return Callback{}, fmt.Errorf("%w: code %d is out of range", ErrType, w.Code)
	}
	c := Callback{Code: int32(w.Code), Msg: w.Msg}
	d := w.Data
	if d == nil {
		return c, nil
	}
	id, err := taskID(d.TaskID, d.TaskIDSnake)
	if err != nil {
		return Callback{}, err
	}
	c.TaskID = id
	if in := d.Info; in != nil {
		c.VideoURLs = merge(c.VideoURLs, in.ResultURLs, in.ResultSnake)
		c.ImageURLs = merge(c.ImageURLs, in.ImageURLs, in.ImageSnake)
	}
	c.VideoURLs = merge(c.VideoURLs, d.ResultURLs, d.ResultSnake)
	c.ImageURLs = merge(c.ImageURLs, d.ImageURLs, d.ImageSnake)
	return c, nil
}

// Validate checks what Parse leaves: every URL is an absolute http or https
// URL, and a success carries at least one video URL. Which hosts may be
// fetched is not decided here.
func (c *Callback) Validate() error {
	if c.Success() && len(c.VideoURLs) == 0 {
		return ErrNoVideo
	}
	for i, u := range c.VideoURLs {
		if err := CheckURL(u); err != nil {
			return fmt.Errorf("video url %d: %w", i, err)
		}
	}
	for i, u := range c.ImageURLs {
		if err := CheckURL(u); err != nil {
			return fmt.Errorf("image url %d: %w", i, err)
		}
	}
	return nil
}

// ValidTaskID reports whether id matches ^[A-Za-z0-9_-]{1,128}$, which also
// makes it a single, wildcard-free NATS subject token.
func ValidTaskID(id string) bool {
	if len(id) == 0 || len(id) > MaxTaskIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// CheckURL reports whether s is an absolute http or https URL with a host.
func CheckURL(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: %q does not parse", ErrURL, truncate(s))
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%w: %q is not an absolute http or https url", ErrURL, truncate(s))
	}
	if u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return fmt.Errorf("%w: %q has no host", ErrURL, truncate(s))
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("%w: %q contains whitespace", ErrURL, truncate(s))
	}
	return nil
}

func taskID(camel, snake string) (string, error) {
	id := camel
	switch {
	case camel == "":
		id = snake
	case snake != "" && snake != camel:
		return "", fmt.Errorf("%w: data.taskId %q and data.task_id %q differ", ErrTaskID, truncate(camel), truncate(snake))
	}
	if id == "" {
		return "", nil
	}
	if !ValidTaskID(id) {
		return "", fmt.Errorf("%w: %q must match ^[A-Za-z0-9_-]{1,128}$", ErrTaskID, truncate(id))
	}
	return id, nil
}

// merge appends the lists to dst, skipping URLs already present. The lists
// are short (one or two URLs), so a linear scan beats a map. In the common
// case (one spelling used, no repeats) the decoded list is returned as is.
func merge(dst []string, lists ...[]string) []string {
	for _, l := range lists {
		if len(dst) == 0 && !hasRepeats(l) {
			dst = l
			continue
		}
		for _, u := range l {
			if !contains(dst, u) {
				dst = append(dst, u)
			}
		}
	}
	return dst
}

func hasRepeats(l []string) bool {
	for i := 1; i < len(l); i++ {
		if contains(l[:i], l[i]) {
			return true
		}
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "body"
		}
		return fmt.Errorf("%w: %s must not be a JSON %s", ErrType, field, te.Value)
	}
	return fmt.Errorf("%w: %s", ErrSyntax, jsonReason(err))
}

// jsonReason keeps encoding/json's explanation short and free of its prefix.
func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// truncate bounds what a hostile value can put into an error message (and a log line).
func truncate(s string) string {
	const max = 160
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
