package adminapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MinTokenLen is the shortest secret part of an admin token accepted: long enough that
// guessing is hopeless.
const MinTokenLen = 32

// tokenIDPattern keeps ids short and plain, so they read well in audit lines and cannot carry
// anything that looks like a secret.
var tokenIDPattern = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// AdminAuth tells who an admin bearer token belongs to.
type AdminAuth interface {
	// Identify returns the id of the admin token, and false for anything that is not one.
	Identify(token string) (id string, ok bool)
}

type namedToken struct {
	id     string
	digest [32]byte
}

// TokenSet is a fixed set of named admin tokens. The zero value accepts nothing.
type TokenSet struct{ tokens []namedToken }

// ParseAdminTokens checks admin tokens written as <id>:<secret> and returns their set. It refuses
// an empty list, a token without an id and a secret shorter than MinTokenLen, so a missing or
// mistyped secret stops the service instead of leaving the admin API open, guessable or
// anonymous. Errors name a token by position only: a token, even a bad one, never reaches a log.
func ParseAdminTokens(tokens []string) (*TokenSet, error) {
	if len(tokens) == 0 {
		return nil, errors.New("no admin token configured: set TRIGGER_ADMIN_TOKENS_FILE (or TRIGGER_ADMIN_TOKENS) to one or more tokens <id>:<secret>, secrets of at least 32 characters")
	}
	set := &TokenSet{}
	for i, raw := range tokens {
		t := strings.TrimSpace(raw)
		id, secret, named := strings.Cut(t, ":")
		switch {
		case t == "":
			return nil, fmt.Errorf("admin token %d of %d is empty: remove the stray comma or blank entry", i+1, len(tokens))
		case !named:
			return nil, fmt.Errorf("admin token %d of %d has no id: write it as <id>:<secret>, e.g. ops-alice:<secret>; the id (1-32 of a-z, 0-9, -) names who acted in the audit log", i+1, len(tokens))
		case !tokenIDPattern.MatchString(id):
			return nil, fmt.Errorf("admin token %d of %d: the id before the first \":\" must be 1-32 of a-z, 0-9 and -", i+1, len(tokens))
		case utf8.RuneCountInString(secret) < MinTokenLen:
			return nil, fmt.Errorf("admin token %d of %d: its secret is shorter than %d characters", i+1, len(tokens), MinTokenLen)
		}
		set.tokens = append(set.tokens, namedToken{id: id, digest: sha256.Sum256([]byte(t))})
	}
	return set, nil
}

// SplitTokens reads the tokens of a tokens file: one per line or comma-separated, blank lines and
// lines starting with # ignored.
func SplitTokens(content string) []string {
	var out []string
	for line := range strings.Lines(content) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for t := range strings.SplitSeq(line, ",") {
			out = append(out, strings.TrimSpace(t))
		}
	}
	return out
}

// Len is how many tokens are accepted.
func (s *TokenSet) Len() int { return len(s.tokens) }

// IDs are the ids of the tokens, in order; an id given to two tokens (during a rotation) is
// listed twice.
func (s *TokenSet) IDs() []string {
	out := make([]string, len(s.tokens))
	for i, t := range s.tokens {
		out[i] = t.id
	}
	return out
}

// Identify compares against every token in constant time: fixed-size digests keep the
// comparison independent of the tokens' lengths, and no early exit tells which one matched.
func (s *TokenSet) Identify(token string) (string, bool) {
	d := sha256.Sum256([]byte(token))
	found := -1
	for i, t := range s.tokens {
		found = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(d[:], t.digest[:]), i, found)
	}
	if found < 0 {
		return "", false
	}
	return s.tokens[found].id, true
}
