// Package apikey is the tenant API key format: tenant_<tenant_id>_live_<secret>, where the
// secret is 32 random base62 characters (190 bits) followed by a 6-character base62 CRC-32 of
// everything before it. The checksum lets a malformed or mistyped key be refused without a
// database read and lets secret scanners recognise real keys. Only the SHA-256 of a key is stored.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"regexp"
	"strings"
)

const (
	alphabet     = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	randomLen    = 32
	checksumLen  = 6
	keyPrefix    = "tenant_"
	liveMarker   = "_live_"
	displayChars = 6
)

// ErrMalformed is returned for any string that is not a well-formed key with a valid checksum.
var ErrMalformed = errors.New("malformed api key")

var tenantIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// ValidTenantID reports whether id is an acceptable tenant id. Tenant ids never contain '_', so
// a key splits unambiguously.
func ValidTenantID(id string) bool { return tenantIDPattern.MatchString(id) }

// Key is a parsed, checksum-verified API key.
type Key struct {
	TenantID string
	raw      string
}

// Hash is the hex SHA-256 of the full key: what the keys table is keyed by.
func (k Key) Hash() string { return Hash(k.raw) }

// Prefix is the part of the key that may be shown and logged: enough to tell keys apart.
func (k Key) Prefix() string {
	return k.raw[:len(keyPrefix)+len(k.TenantID)+len(liveMarker)+displayChars]
}

// String returns the full secret key.
func (k Key) String() string { return k.raw }

// Hash is the hex SHA-256 of a key string.
func Hash(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// New generates a fresh key for tenantID.
func New(tenantID string) (Key, error) {
	if !ValidTenantID(tenantID) {
		return Key{}, errors.New("invalid tenant id")
	}
	random := make([]byte, randomLen)
	if err := randomBase62(random); err != nil {
		return Key{}, err
	}
	body := keyPrefix + tenantID + liveMarker + string(random)
	return Key{TenantID: tenantID, raw: body + checksum(body)}, nil
}

// Parse checks a key's shape and checksum. It never touches the database.
func Parse(raw string) (Key, error) {
	rest, ok := strings.CutPrefix(raw, keyPrefix)
	if !ok {
		return Key{}, ErrMalformed
	}
	tenantID, secret, ok := strings.Cut(rest, liveMarker)
	if !ok || !ValidTenantID(tenantID) || len(secret) != randomLen+checksumLen {
		return Key{}, ErrMalformed
	}
	for i := 0; i < len(secret); i++ {
		if strings.IndexByte(alphabet, secret[i]) < 0 {
			return Key{}, ErrMalformed
		}
	}
	body := raw[:len(raw)-checksumLen]
	if checksum(body) != raw[len(raw)-checksumLen:] {
		return Key{}, ErrMalformed
	}
	return Key{TenantID: tenantID, raw: raw}, nil
}

func checksum(body string) string {
	n := crc32.ChecksumIEEE([]byte(body))
	out := make([]byte, checksumLen)
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = alphabet[n%62]
		n /= 62
	}
	return string(out)
}

// randomBase62 fills dst with uniformly random base62 characters, rejecting bytes >= 248 so
// that no character is more likely than another.
func randomBase62(dst []byte) error {
	buf := make([]byte, 64)
	for i := 0; i < len(dst); {
		if _, err := rand.Read(buf); err != nil {
			return err
		}
		for _, b := range buf {
			if b >= 248 {
				continue
			}
			dst[i] = alphabet[b%62]
			i++
			if i == len(dst) {
				break
			}
		}
	}
	return nil
}
