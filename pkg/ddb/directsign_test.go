package ddb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The direct signer's Authorization equals the SDK signer's for the same request, across
// keys, days, hosts and tokens, including when its cached day key must be derived again.
func TestDirectSignerSignsAsTheSDK(t *testing.T) {
	s := &directSigner{region: "eu-central-1"}
	day1 := time.Date(2026, 12, 6, 23, 59, 59, 0, time.UTC)
	day2 := day1.Add(2 * time.Second)
	a := aws.Credentials{AccessKeyID: "AKIDA", SecretAccessKey: "secret-a"}
	b := aws.Credentials{AccessKeyID: "AKIDA", SecretAccessKey: "secret-b", SessionToken: "tok/en+=="}
	for i, tc := range []struct {
		creds aws.Credentials
		host  string
		op    directOp
		body  string
		at    time.Time
	}{
		{a, "dynamodb.eu-central-1.amazonaws.com", opPutItem, `{"TableName":"t"}`, day1},
		{a, "dynamodb.eu-central-1.amazonaws.com", opPutItem, `{"TableName":"t"}`, day2}, // the next day
		{b, "123456789012.ddb.eu-central-1.amazonaws.com", opPutItem, `{"TableName":"u","Item":{}}`, day2},
		{a, "127.0.0.1:8000", opPutItem, `{}`, day2.In(time.FixedZone("x", 3600))},
		{b, "dynamodb.eu-central-1.amazonaws.com", opUpdateItem, `{"TableName":"t","Key":{}}`, day2},
	} {
		body := []byte(tc.body)
		h, ok := s.headers(tc.creds, tc.host, tc.op, body, tc.at)
		if !ok || h.Get("X-Amz-Target") != tc.op.target[0] {
			t.Fatalf("%d: not signed, or for another operation (%q)", i, h.Get("X-Amz-Target"))
		}
		req, _ := http.NewRequest(http.MethodPost, "https://"+tc.host+"/", bytes.NewReader(body))
		for _, k := range []string{"Content-Type", "X-Amz-Target", "Accept-Encoding"} {
			req.Header.Set(k, h.Get(k))
		}
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), tc.creds, req, hex.EncodeToString(sum[:]), "dynamodb", "eu-central-1", tc.at); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
			if got, want := h.Get(k), req.Header.Get(k); got != want {
				t.Errorf("%d: %s\n got %q\nwant %q", i, k, got, want)
			}
		}
	}
}

// What the SDK's signer would sign otherwise is left to it.
func TestDirectSignerDeclinesOtherShapes(t *testing.T) {
	for endpoint, want := range map[string]bool{
		"https://dynamodb.us-east-1.amazonaws.com":      true,
		"http://127.0.0.1:8000":                         true,
		"http://127.0.0.1:8000/":                        true,
		"https://dynamodb.us-east-1.amazonaws.com:443":  false,
		"http://localhost:80":                           false,
		"https://proxy.example.com/dynamodb":            false,
		"https://dynamodb.us-east-1.amazonaws.com/?x=1": false,
	} {
		if got := canSign(endpoint); got != want {
			t.Errorf("canSign(%s) = %v, want %v", endpoint, got, want)
		}
	}
	s := &directSigner{region: "us-east-1"}
	if _, ok := s.headers(aws.Credentials{AccessKeyID: "a", SecretAccessKey: "b", SessionToken: "with space"}, "h", opPutItem, []byte("{}"), time.Now()); ok {
		t.Error("a token the SDK would trim was signed")
	}
}
