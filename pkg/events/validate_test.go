package events

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth)
	tooDeep := `{"event_type":"x","n":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + "}"
	cases := []struct {
		name, body, wantType, wantCode string
	}{
		{"ok-seed", `{"event_type":"customer.created","customer_id":"123"}`, "customer.created", ""},
		{"ok-whitespace", " \n{\"event_type\" : \"a:b-c_d.E9\"}\n", "a:b-c_d.E9", ""},
		{"ok-max-type", `{"event_type":"` + strings.Repeat("a", 128) + `"}`, strings.Repeat("a", 128), ""},
		{"ok-depth-bound", strings.Replace(deep, `{"a":`, `{"event_type":"t","a":`, 1), "t", ""},
		{"ok-brackets-in-strings", `{"event_type":"t","s":"[[[[{{{\"]]"}`, "t", ""},
		{"not-json", `event_type=x`, "", "invalid_json"},
		{"empty", ``, "", "invalid_json"},
		{"trailing-data", `{"event_type":"x"} {}`, "", "invalid_json"},
		{"trailing-garbage", `{"event_type":"x"}x`, "", "invalid_json"},
		{"invalid-utf8", "{\"event_type\":\"x\",\"s\":\"\xff\"}", "", "invalid_json"},
		{"too-deep", tooDeep, "", "invalid_json"},
		{"duplicate-type", `{"event_type":"a","event_type":"b"}`, "", "invalid_json"},
		{"duplicate-nested-key", `{"event_type":"a","o":{"k":1,"k":2}}`, "", "invalid_json"},
		{"array", `[{"event_type":"x"}]`, "", "invalid_event"},
		{"string", `"event_type"`, "", "invalid_event"},
		{"null", `null`, "", "invalid_event"},
		{"missing-type", `{"type":"x"}`, "", "invalid_event"},
		{"type-wrong-case-key", `{"EVENT_TYPE":"x"}`, "", "invalid_event"},
		{"type-number", `{"event_type":12}`, "", "invalid_event"},
		{"type-null", `{"event_type":null}`, "", "invalid_event"},
		{"type-empty", `{"event_type":""}`, "", "invalid_event"},
		{"type-too-long", `{"event_type":"` + strings.Repeat("a", 129) + `"}`, "", "invalid_event"},
		{"type-space", `{"event_type":"a b"}`, "", "invalid_event"},
		{"type-slash", `{"event_type":"a/b"}`, "", "invalid_event"},
		{"type-unicode", `{"event_type":"caf\u00e9"}`, "", "invalid_event"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Validate([]byte(tc.body))
			if tc.wantCode == "" {
				if err != nil || got != tc.wantType {
					t.Fatalf("Validate = %q, %v; want %q", got, err, tc.wantType)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Code != tc.wantCode {
				t.Fatalf("Validate err = %v, want code %s", err, tc.wantCode)
			}
		})
	}
}

func TestCursorRoundTripAndBinding(t *testing.T) {
	p := Position{VisibleAt: time.UnixMilli(1732140249123).UTC(), EventID: NewID()}
	c := EncodeCursor("acme", ListInbox, p)
	got, err := DecodeCursor("acme", ListInbox, c)
	if err != nil || got != p {
		t.Fatalf("DecodeCursor = %+v, %v; want %+v", got, err, p)
	}
	for name, cur := range map[string]string{
		"other-tenant": c,
		"not-base64":   "!!!",
		"not-json":     "bm90LWpzb24",
		"too-long":     strings.Repeat("a", 600),
	} {
		tenant := "acme"
		if name == "other-tenant" {
			tenant = "globex"
		}
		if _, err := DecodeCursor(tenant, ListInbox, cur); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("%s: DecodeCursor err = %v", name, err)
		}
	}
	if _, err := DecodeCursor("acme", ListDead, c); !errors.Is(err, ErrInvalidCursor) {
		t.Errorf("an inbox cursor was accepted for the dead list")
	}
	bad := EncodeCursor("acme", ListInbox, Position{VisibleAt: time.UnixMilli(1), EventID: "evt_x"})
	if _, err := DecodeCursor("acme", ListInbox, bad); !errors.Is(err, ErrInvalidCursor) {
		t.Errorf("cursor with a malformed event id accepted")
	}
}

func TestSortKeyOrdersLikeTime(t *testing.T) {
	a := Position{VisibleAt: time.UnixMilli(999), EventID: NewID()}.SortKey()
	b := Position{VisibleAt: time.UnixMilli(1000), EventID: NewID()}.SortKey()
	if !(a < b) {
		t.Fatalf("%s sorts after %s", a, b)
	}
}

func TestPartitionOfSpreads(t *testing.T) {
	counts := make([]int, 4)
	for i := 0; i < 4000; i++ {
		p := PartitionOf(NewID(), 4)
		counts[p]++
	}
	for p, n := range counts {
		if n < 800 || n > 1200 {
			t.Fatalf("partition %d got %d of 4000 events: %v", p, n, counts)
		}
	}
	if PartitionOf(NewID(), 1) != 0 {
		t.Fatal("a single partition must be 0")
	}
}

func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"event_type":"a","b":[1,2,{"c":"d"}]}`))
	f.Add([]byte(`{"event_type":"a\"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		typ, err := Validate(body)
		if err == nil && ValidateType(typ) != nil {
			t.Fatalf("accepted invalid type %q", typ)
		}
	})
}
