package adminapi

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// TokenFile is the admin tokens of a file, such as a mounted Kubernetes Secret, read again while
// the service runs so that adding, rotating or removing a token takes no restart.
//
// The path is read afresh each time rather than watched through an open file: Kubernetes
// updates a mounted Secret by swapping a symlink, so an open descriptor would keep the old
// content forever. A change that does not parse keeps the last good set, with an error logged,
// instead of locking every operator out.
type TokenFile struct {
	path string
	log  *zap.Logger
	cur  atomic.Pointer[TokenSet]

	// Only the Watch goroutine touches these once LoadTokenFile has returned.
	seen    [32]byte // digest of the last content read, good or bad: an unchanged file is not parsed or logged again
	readErr string   // the last read failure logged, so a lasting one is logged once
}

// LoadTokenFile reads and checks the tokens in path. A file that is missing or holds no good
// set refuses the start: there is no earlier set to fall back on.
func LoadTokenFile(log *zap.Logger, path string) (*TokenFile, error) {
	f := &TokenFile{path: path, log: log}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("admin tokens file: %w", err)
	}
	set, err := ParseAdminTokens(SplitTokens(string(data)))
	if err != nil {
		return nil, fmt.Errorf("admin tokens file %s: %w", path, err)
	}
	f.seen = sha256.Sum256(data)
	f.cur.Store(set)
	log.Info("admin tokens loaded", zap.String("file", path), zap.Strings("admin_ids", set.IDs()))
	return f, nil
}

// Identify checks token against the set read last.
func (f *TokenFile) Identify(token string) (string, bool) { return f.cur.Load().Identify(token) }

// Watch reads the file every interval until ctx ends.
func (f *TokenFile) Watch(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f.reload()
		}
	}
}

// reload reads the file once and takes its tokens if they changed and are good.
func (f *TokenFile) reload() {
	data, err := os.ReadFile(f.path)
	if err != nil {
		if err.Error() != f.readErr {
			f.readErr = err.Error()
			f.log.Error("admin tokens file unreadable; the last good tokens stay in use", zap.Error(err),
				zap.Strings("admin_ids", f.cur.Load().IDs()))
		}
		return
	}
	f.readErr = ""
	sum := sha256.Sum256(data)
	if sum == f.seen {
		return
	}
	f.seen = sum
	set, err := ParseAdminTokens(SplitTokens(string(data)))
	if err != nil {
		f.log.Error("admin tokens file invalid; the last good tokens stay in use", zap.String("file", f.path),
			zap.Error(err), zap.Strings("admin_ids", f.cur.Load().IDs()))
		return
	}
	f.cur.Store(set)
	f.log.Info("admin tokens reloaded", zap.String("file", f.path), zap.Strings("admin_ids", set.IDs()))
}
