package ddb

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// directSigner signs the direct path's one shape of request with SigV4: POST to the
// endpoint's root, the same headers every time but the operation's target. It gives the signature the SDK's signer gives
// that request (tests compare the two), at a tenth of its allocations: the canonical request
// is written in one buffer, and the day's signing key is derived once a day, not per call.
// Requests outside that shape (a path or default port in the endpoint, a header value the
// SDK would trim) are left to the SDK's signer.
type directSigner struct {
	region string
	key    atomic.Pointer[signingKey]
}

// signingKey is the key derived for one secret on one day.
type signingKey struct {
	accessKey, secret, day string
	key                    []byte
}

// Constant header values, shared by every request: net/http only reads them.
var (
	directContentTypeValue = []string{directContentType}
	// As the SDK asks: the answer is small, and a compressed one would cost both sides more.
	identityValue = []string{"identity"}
)

// canSign reports whether requests to endpoint have the shape sign writes.
func canSign(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return false
	}
	// The SDK's signer drops a scheme's default port from the host it signs.
	port := u.Port()
	return !(u.Scheme == "https" && port == "443") && !(u.Scheme == "http" && port == "80")
}

// headers returns the request's headers, signed for creds at now. ok is false when the SDK's
// signer would sign them differently (a value with spaces it would trim).
func (s *directSigner) headers(creds aws.Credentials, host string, op directOp, body []byte, now time.Time) (http.Header, bool) {
	if strings.ContainsAny(creds.SessionToken, " \t") || strings.ContainsAny(host, " \t") {
		return nil, false
	}
	now = now.UTC()
	amzDate := now.Format("20060102T150405Z")
	day := amzDate[:8]
	bodySum := sha256.Sum256(body)

	// The canonical request, its headers sorted by name.
	c := make([]byte, 0, 512+len(creds.SessionToken))
	c = append(c, "POST\n/\n\naccept-encoding:identity\ncontent-length:"...)
	c = strconv.AppendInt(c, int64(len(body)), 10)
	c = append(c, "\ncontent-type:"+directContentType+"\nhost:"...)
	c = append(c, host...)
	c = append(c, "\nx-amz-date:"...)
	c = append(c, amzDate...)
	signed := "accept-encoding;content-length;content-type;host;x-amz-date;x-amz-target"
	if creds.SessionToken != "" {
		c = append(c, "\nx-amz-security-token:"...)
		c = append(c, creds.SessionToken...)
		signed = "accept-encoding;content-length;content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
	}
	c = append(c, "\nx-amz-target:"...)
	c = append(c, op.target[0]...)
	c = append(c, "\n\n"...)
	c = append(c, signed...)
	c = append(c, '\n')
	c = hex.AppendEncode(c, bodySum[:])
	canonical := sha256.Sum256(c)

	scope := day + "/" + s.region + "/dynamodb/aws4_request"
	toSign := c[:0]
	toSign = append(toSign, "AWS4-HMAC-SHA256\n"...)
	toSign = append(toSign, amzDate...)
	toSign = append(toSign, '\n')
	toSign = append(toSign, scope...)
	toSign = append(toSign, '\n')
	toSign = hex.AppendEncode(toSign, canonical[:])
	mac := hmac.New(sha256.New, s.keyFor(creds, day))
	mac.Write(toSign)
	var sig [sha256.Size]byte

	auth := make([]byte, 0, 256)
	auth = append(auth, "AWS4-HMAC-SHA256 Credential="...)
	auth = append(auth, creds.AccessKeyID...)
	auth = append(auth, '/')
	auth = append(auth, scope...)
	auth = append(auth, ", SignedHeaders="...)
	auth = append(auth, signed...)
	auth = append(auth, ", Signature="...)
	auth = hex.AppendEncode(auth, mac.Sum(sig[:0]))

	h := make(http.Header, 7)
	h["Content-Type"] = directContentTypeValue
	h["X-Amz-Target"] = op.target
	h["Accept-Encoding"] = identityValue
	h["X-Amz-Date"] = []string{amzDate}
	if creds.SessionToken != "" {
		h["X-Amz-Security-Token"] = []string{creds.SessionToken}
	}
	h["Authorization"] = []string{string(auth)}
	return h, true
}

// keyFor is the signing key of creds on day, derived again only when either changes.
func (s *directSigner) keyFor(creds aws.Credentials, day string) []byte {
	if k := s.key.Load(); k != nil && k.day == day && k.accessKey == creds.AccessKeyID && k.secret == creds.SecretAccessKey {
		return k.key
	}
	key := hmacOf([]byte("AWS4"+creds.SecretAccessKey), day)
	for _, part := range []string{s.region, "dynamodb", "aws4_request"} {
		key = hmacOf(key, part)
	}
	s.key.Store(&signingKey{accessKey: creds.AccessKeyID, secret: creds.SecretAccessKey, day: day, key: key})
	return key
}

func hmacOf(key []byte, data string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(data))
	return mac.Sum(nil)
}
