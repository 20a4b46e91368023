package events_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/trigger-api/trigger-api/pkg/events"
)

// typicalBody is the size and shape most producers send: a handful of flat fields.
const typicalBody = `{"event_type":"customer.created","customer_id":"cus_8f2a61c9","email":"alice@example.com",` +
	`"name":"Alice Example","plan":"pro","created_at":"2025-01-15T10:04:05Z","metadata":{"source":"signup","campaign":"spring"}}`

// largeBody builds an object of at least n bytes out of many small nested records, the shape
// that makes a validator walk every byte and allocate for every member.
func largeBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"event_type":"order.batch_imported","batch_id":"bat_01","items":[`)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%06d","qty":%d,"price":%d.99,"tags":["a","b"],"note":"caf\u00e9 \"quoted\" item"}`, i, i%7+1, i%500)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func BenchmarkValidate(b *testing.B) {
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"typical", []byte(typicalBody)},
		{"200KiB", largeBody(200 << 10)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if _, err := events.Validate(tc.body); err != nil {
				b.Fatalf("fixture does not validate: %v", err)
			}
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := events.Validate(tc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
