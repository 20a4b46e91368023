// Package jsonshape checks the shape of valid JSON that encoding/json lets through: how deep
// it nests, and whether an object names a key twice. A duplicate key is ambiguous (which value
// counts differs between parsers), so the API refuses it instead of keeping the last one.
package jsonshape

import (
	"encoding/json"
	"fmt"
)

// Error says what is wrong with the shape.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// objectKeys holds the keys seen in one open object: a slice while small, since most objects
// have a handful of keys, and a set once it grows.
type objectKeys struct {
	few  []string
	many map[string]struct{}
}

func (o *objectKeys) add(k string) (dup bool) {
	if o.many != nil {
		if _, ok := o.many[k]; ok {
			return true
		}
		o.many[k] = struct{}{}
		return false
	}
	for _, s := range o.few {
		if s == k {
			return true
		}
	}
	o.few = append(o.few, k)
	if len(o.few) > 16 {
		o.many = make(map[string]struct{}, 2*len(o.few))
		for _, s := range o.few {
			o.many[s] = struct{}{}
		}
		o.few = nil
	}
	return false
}

// Check scans b, which must already be valid JSON, in one pass: it fails when objects and
// arrays nest deeper than maxDepth or when an object has a key twice (compared after
// unescaping, so "a" and "\u0061" are the same key).
func Check(b []byte, maxDepth int) error {
	var stack []*objectKeys // nil entries are arrays
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end := stringEnd(b, i)
			if n := len(stack); n > 0 && stack[n-1] != nil && isKey(b, end+1) {
				k := key(b[i : end+1])
				if stack[n-1].add(k) {
					return &Error{Msg: fmt.Sprintf("duplicate key %q in an object", k)}
				}
			}
			i = end
		case '{', '[':
			if len(stack) == maxDepth {
				return &Error{Msg: fmt.Sprintf("JSON nests deeper than %d levels", maxDepth)}
			}
			var o *objectKeys
			if b[i] == '{' {
				o = &objectKeys{}
			}
			stack = append(stack, o)
		case '}', ']':
			stack = stack[:len(stack)-1]
		}
	}
	return nil
}

// stringEnd returns the index of the quote closing the string that opens at b[start].
func stringEnd(b []byte, start int) int {
	for i := start + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(b) - 1
}

// isKey reports whether the string that ended just before b[from] is followed by a colon.
func isKey(b []byte, from int) bool {
	for i := from; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
		case ':':
			return true
		default:
			return false
		}
	}
	return false
}

// key returns a quoted key's text, unescaped only when it holds an escape.
func key(quoted []byte) string {
	for _, c := range quoted[1 : len(quoted)-1] {
		if c == '\\' {
			var s string
			if json.Unmarshal(quoted, &s) == nil {
				return s
			}
			break
		}
	}
	return string(quoted[1 : len(quoted)-1])
}
