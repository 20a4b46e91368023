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

// maxLinearKeys is how many keys an object is checked against by comparison before it gets a
// set: most objects have a handful of keys, and comparing those costs less than hashing.
const maxLinearKeys = 16

// frame is one open object or array. An object's keys are keys[start:] of the scan's shared
// list, or its set once it has grown past maxLinearKeys.
type frame struct {
	object bool
	start  int
	set    map[string]struct{}
}

// addKey records key k in the open object f, whose keys are keys[f.start:] until it has a
// set, and returns the keys and whether k was there already. The keys refer to the document's
// bytes unless they held an escape.
func addKey(f *frame, keys [][]byte, k []byte) ([][]byte, bool) {
	if f.set != nil {
		if _, ok := f.set[string(k)]; ok {
			return keys, true
		}
		f.set[string(k)] = struct{}{}
		return keys, false
	}
	for _, o := range keys[f.start:] {
		if string(o) == string(k) {
			return keys, true
		}
	}
	keys = append(keys, k)
	if len(keys)-f.start > maxLinearKeys {
		f.set = make(map[string]struct{}, 2*(len(keys)-f.start))
		for _, o := range keys[f.start:] {
			f.set[string(o)] = struct{}{}
		}
		keys = keys[:f.start]
	}
	return keys, false
}

// Member is what Scan found of a member of the top-level object.
type Member struct {
	Found bool
	// String is the member's value, quotes and escapes as sent, when it is a string; nil for
	// any other value.
	String []byte
	// Null says the value is null, which encoding/json decodes into a string as "".
	Null bool
}

// Check scans b, which must already be valid JSON, in one pass: it fails when objects and
// arrays nest deeper than maxDepth or when an object has a key twice (compared after
// unescaping, so "a" and "\u0061" are the same key).
func Check(b []byte, maxDepth int) error {
	_, err := Scan(b, maxDepth, "")
	return err
}

// Scan is Check that also finds the member called name (compared after unescaping) of the
// top-level object, in the same pass: a caller that needs one field of a document need not
// decode it all. With no name, or when b is not an object, nothing is found.
func Scan(b []byte, maxDepth int, name string) (Member, error) {
	// Room for the usual document on the stack of this function: no allocation until an
	// event nests deeper or holds more keys than these.
	var stackRoom [16]frame
	var keyRoom [64][]byte
	stack, keys := stackRoom[:0], keyRoom[:0]
	var m Member
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end := stringEnd(b, i)
			if n := len(stack); n > 0 && stack[n-1].object {
				if colon, ok := keyColon(b, end+1); ok {
					k := key(b[i : end+1])
					var dup bool
					if keys, dup = addKey(&stack[n-1], keys, k); dup {
						return Member{}, &Error{Msg: fmt.Sprintf("duplicate key %q in an object", k)}
					}
					if n == 1 && name != "" && string(k) == name {
						m = member(b, colon+1)
					}
				}
			}
			i = end
		case '{', '[':
			if len(stack) == maxDepth {
				return Member{}, &Error{Msg: fmt.Sprintf("JSON nests deeper than %d levels", maxDepth)}
			}
			stack = append(stack, frame{object: b[i] == '{', start: len(keys)})
		case '}', ']':
			keys = keys[:stack[len(stack)-1].start]
			stack = stack[:len(stack)-1]
		}
	}
	return m, nil
}

// member describes the value that starts after white space at b[from].
func member(b []byte, from int) Member {
	for i := from; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
		case '"':
			return Member{Found: true, String: b[i : stringEnd(b, i)+1]}
		default:
			// Valid JSON: a value that starts with n is null.
			return Member{Found: true, Null: b[i] == 'n'}
		}
	}
	return Member{Found: true}
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

// keyColon reports whether the string that ended just before b[from] is followed by a colon,
// which makes it a key, and where that colon is.
func keyColon(b []byte, from int) (int, bool) {
	for i := from; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
		case ':':
			return i, true
		default:
			return 0, false
		}
	}
	return 0, false
}

// key returns a quoted key's text, unescaped (into a copy) only when it holds an escape.
func key(quoted []byte) []byte {
	for _, c := range quoted[1 : len(quoted)-1] {
		if c == '\\' {
			var s string
			if json.Unmarshal(quoted, &s) == nil {
				return []byte(s)
			}
			break
		}
	}
	return quoted[1 : len(quoted)-1]
}
