package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/trigger-api/trigger-api/pkg/jsonshape"
)

// Limits on what producers may send.
const (
	MaxEventBytes          = 256 << 10
	MaxDepth               = 64
	MaxEventTypeBytes      = 128
	MaxIdempotencyKeyBytes = 255
)

// ErrEventTooLarge: one event of a batch is over MaxEventBytes (a whole body over it is refused
// before it is read).
var ErrEventTooLarge = fmt.Errorf("event exceeds %d bytes", MaxEventBytes)

// ValidIdempotencyKey reports whether k can be an idempotency key: 1 to 255 printable ASCII
// characters, as Stripe takes them.
func ValidIdempotencyKey(k string) bool {
	if len(k) < 1 || len(k) > MaxIdempotencyKeyBytes {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// ValidationError is a producer mistake: always a 400.
type ValidationError struct {
	Code string // invalid_json or invalid_event
	Msg  string
}

func (e *ValidationError) Error() string { return e.Msg }

func invalidJSON(msg string) error  { return &ValidationError{Code: "invalid_json", Msg: msg} }
func invalidEvent(msg string) error { return &ValidationError{Code: "invalid_event", Msg: msg} }

// Validate checks an event body and returns its event_type. The body must be one UTF-8 JSON
// object, nested at most MaxDepth deep, naming no key twice in any object, with a string event_type of 1 to 128 characters from
// [A-Za-z0-9._:-].
func Validate(body []byte) (string, error) {
	if !utf8.Valid(body) {
		return "", invalidJSON("body is not valid UTF-8")
	}
	if !json.Valid(body) {
		return "", invalidJSON("body is not a single valid JSON value")
	}
	// The shape check finds event_type in the same pass: decoding the whole object only to
	// read one field of it was most of what validation cost.
	m, err := jsonshape.Scan(body, MaxDepth, "event_type")
	if err != nil {
		return "", invalidJSON(err.Error())
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return "", invalidEvent("body must be a JSON object")
	}
	// Matched after unescaping and case-sensitively: "EVENT_TYPE" is not "event_type".
	if !m.Found {
		return "", invalidEvent("event_type is required")
	}
	var eventType string // null leaves it empty, as encoding/json does, and so too short
	switch {
	case m.String != nil:
		eventType = unquote(m.String)
	case !m.Null:
		return "", invalidEvent("event_type must be a string")
	}
	if err := ValidateType(eventType); err != nil {
		return "", err
	}
	return eventType, nil
}

// unquote returns a JSON string's text; valid JSON without escapes is its bytes as they are.
func unquote(quoted []byte) string {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return string(quoted[1 : len(quoted)-1])
	}
	var s string
	_ = json.Unmarshal(quoted, &s) // valid: the whole body passed json.Valid
	return s
}

// ValidateType checks an event type, as sent or as used in a filter.
func ValidateType(t string) error {
	if t == "" || len(t) > MaxEventTypeBytes {
		return invalidEvent(fmt.Sprintf("event_type must be 1 to %d characters", MaxEventTypeBytes))
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return invalidEvent("event_type may only contain A-Z, a-z, 0-9 and . _ : -")
		}
	}
	return nil
}
