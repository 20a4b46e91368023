package events

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Position is a place in the inbox order: the visible time, then the event id. It is the
// inbox index's sort key, so one position orders events across all of a tenant's partitions.
type Position struct {
	VisibleAt time.Time
	EventID   string
}

// IsZero reports whether p is the start of the inbox.
func (p Position) IsZero() bool { return p.EventID == "" }

// SortKey renders p as the inbox index sort key: zero-padded epoch ms, '#', event id.
func (p Position) SortKey() string {
	return fmt.Sprintf("%013d#%s", p.VisibleAt.UnixMilli(), p.EventID)
}

// ParseSortKey reads an inbox index sort key.
func ParseSortKey(sk string) (Position, error) {
	ms, id, ok := strings.Cut(sk, "#")
	if !ok || len(ms) != 13 || !ValidID(id) {
		return Position{}, ErrInvalidCursor
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n < 0 {
		return Position{}, ErrInvalidCursor
	}
	return Position{VisibleAt: time.UnixMilli(n).UTC(), EventID: id}, nil
}

type cursorBody struct {
	Tenant string `json:"t"`
	List   string `json:"l,omitempty"`
	After  string `json:"a"`
}

// Lists a cursor can belong to.
const (
	ListInbox = ""
	ListDead  = "dead"
)

// EncodeCursor makes an opaque cursor for tenantID's list that resumes after p.
func EncodeCursor(tenantID, list string, p Position) string {
	b, _ := json.Marshal(cursorBody{Tenant: tenantID, List: list, After: p.SortKey()})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor; a malformed one, or one made for another tenant or list, is
// ErrInvalidCursor. Binding it to the tenant is about clear errors, not secrecy: every read is
// scoped by the authenticated tenant whatever the cursor says.
func DecodeCursor(tenantID, list, cursor string) (Position, error) {
	if len(cursor) > 512 {
		return Position{}, ErrInvalidCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return Position{}, ErrInvalidCursor
	}
	var body cursorBody
	if err := json.Unmarshal(raw, &body); err != nil || body.Tenant != tenantID || body.List != list {
		return Position{}, ErrInvalidCursor
	}
	return ParseSortKey(body.After)
}
