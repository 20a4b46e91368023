package jsonshape

import (
	"strconv"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 64) + "1" + strings.Repeat("}", 64)
	for _, tc := range []struct {
		name, body string
		bad        string // part of the error; empty: accepted
	}{
		{"flat", `{"event_type":"a","n":1}`, ""},
		{"same key in different objects", `{"a":{"x":1},"b":{"x":2},"x":3}`, ""},
		{"same key in array elements", `[{"a":1},{"a":2}]`, ""},
		{"string values equal to keys", `{"a":"a","b":"a"}`, ""},
		{"colon inside a string value", `{"a":"b:c","b":"a"}`, ""},
		{"escaped quote in a key", `{"a\"b":1,"a":2}`, ""},
		{"duplicate at top", `{"event_type":"a","event_type":"b"}`, `duplicate key "event_type"`},
		{"duplicate nested", `{"a":{"x":1,"y":[{"z":1,"z":2}]}}`, `duplicate key "z"`},
		{"duplicate through an escape", `{"a":1,"\u0061":2}`, `duplicate key "a"`},
		{"duplicate among many", `{` + manyKeys(40) + `,"k7":0}`, `duplicate key "k7"`},
		{"many distinct", `{` + manyKeys(40) + `}`, ""},
		{"64 deep", deep, ""},
		{"65 deep", `[` + deep + `]`, "deeper than 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]byte(tc.body), 64)
			switch {
			case tc.bad == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
				t.Fatalf("got %v, want an error with %q", err, tc.bad)
			}
		})
	}
}

func manyKeys(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `"k` + strconv.Itoa(i) + `":1`
	}
	return strings.Join(parts, ",")
}

func TestScanFindsATopLevelMember(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		found      bool
		value      string // the string as sent; "" when not a string
	}{
		{"string", `{"a":1,"event_type":"x.y"}`, true, `"x.y"`},
		{"spaces", "{ \"event_type\" :\n \"x\" }", true, `"x"`},
		{"escaped value", `{"event_type":"a\"b"}`, true, `"a\"b"`},
		{"escaped name", `{"event\u005ftype":"x"}`, true, `"x"`},
		{"number", `{"event_type":7}`, true, ""},
		{"null", `{"event_type":null}`, true, ""},
		{"object", `{"event_type":{"event_type":"x"}}`, true, ""},
		{"only nested", `{"a":{"event_type":"x"}}`, false, ""},
		{"in an array", `[{"event_type":"x"}]`, false, ""},
		{"as a value", `{"a":"event_type"}`, false, ""},
		{"other case", `{"EVENT_TYPE":"x"}`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Scan([]byte(tc.body), 64, "event_type")
			if err != nil {
				t.Fatal(err)
			}
			if m.Found != tc.found || string(m.String) != tc.value {
				t.Errorf("found %v %q, want %v %q", m.Found, m.String, tc.found, tc.value)
			}
			if m.Null != (tc.name == "null") {
				t.Errorf("null %v", m.Null)
			}
		})
	}
}

func TestScanAllocatesNothingForATypicalEvent(t *testing.T) {
	body := []byte(`{"event_type":"customer.created","customer_id":"123","meta":{"a":1,"b":[1,{"c":2}]}}`)
	if n := testing.AllocsPerRun(100, func() { _, _ = Scan(body, 64, "event_type") }); n != 0 {
		t.Errorf("%v allocations, want none", n)
	}
}
