package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/trigger-api/trigger-api/pkg/jsonshape"
)

// MaxRequestBytes bounds the small JSON bodies of control calls (ack, admin).
const MaxRequestBytes = 64 << 10

var (
	errUnsupportedMedia = NewError(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
)

func tooLarge(limit int64) *Error {
	return NewError(http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("body exceeds %d bytes", limit))
}

// ReadJSONBody returns the raw body of a JSON request of at most limit bytes. It refuses a
// wrong Content-Type (415) and an oversized body (413) without reading more than limit+1 bytes.
func ReadJSONBody(c *gin.Context, limit int64) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, errUnsupportedMedia
	}
	if c.Request.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	if n := c.Request.ContentLength; n >= 0 {
		// A declared length is all the server lets the handler read: one buffer of that size,
		// where reading to the end would grow one from 512 bytes and copy it along the way.
		body := make([]byte, n)
		if _, err := io.ReadFull(c.Request.Body, body); err != nil {
			return nil, BadRequest("could not read the request body")
		}
		return body, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge(limit)
	}
	if err != nil {
		return nil, BadRequest("could not read the request body")
	}
	return body, nil
}

// DecodeJSON reads a control call's body strictly into dst: application/json, at most
// MaxRequestBytes, one object, no unknown fields, no key twice, nothing after it.
func DecodeJSON(c *gin.Context, dst any) error {
	body, err := ReadJSONBody(c, MaxRequestBytes)
	if err != nil {
		return err
	}
	if json.Valid(body) {
		if err := jsonshape.Check(body, 64); err != nil {
			return NewError(http.StatusBadRequest, "invalid_json", err.Error())
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return NewError(http.StatusBadRequest, "invalid_request", fmt.Sprintf("field %q has the wrong type", ute.Field))
		}
		if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return NewError(http.StatusBadRequest, "invalid_request", "unknown field "+field)
		}
		return NewError(http.StatusBadRequest, "invalid_json", "body is not a valid JSON object")
	}
	if dec.More() {
		return NewError(http.StatusBadRequest, "invalid_json", "unexpected data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return NewError(http.StatusBadRequest, "invalid_json", "unexpected data after the JSON object")
	}
	return nil
}
