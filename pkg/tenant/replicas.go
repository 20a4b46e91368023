package tenant

import (
	"context"
	"net"
	"time"

	"go.uber.org/zap"
)

// replicasInterval is how often the replicas are counted again: a scaled Deployment's tenants
// get their new share within it.
const replicasInterval = 5 * time.Second

// resolveTimeout bounds one count; a slow DNS must not hold the last count's loop.
const resolveTimeout = 2 * time.Second

// Replicas is how many replicas share each tenant's rate.
func (a *Authenticator) Replicas() int { return int(a.replicas.Load()) }

// FollowReplicas counts the addresses AuthConfig.RateReplicas resolves to, at once and then
// every few seconds until ctx ends, and shares each tenant's rate among them. A failed or empty
// answer keeps the last count: a DNS hiccup must not multiply every tenant's rate. resolve may
// be nil for the system's resolver. Without RateReplicas it returns at once.
func (a *Authenticator) FollowReplicas(ctx context.Context, log *zap.Logger, resolve func(context.Context, string) ([]string, error)) {
	host := a.cfg.RateReplicas
	if host == "" {
		return
	}
	if resolve == nil {
		resolve = lookupHost
	}
	t := time.NewTicker(replicasInterval)
	defer t.Stop()
	for {
		a.countReplicas(ctx, log, host, resolve)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Authenticator) countReplicas(ctx context.Context, log *zap.Logger, host string, resolve func(context.Context, string) ([]string, error)) {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := resolve(ctx, host)
	if err != nil || len(addrs) == 0 {
		log.Warn("tenant rate: counting the replicas failed; keeping the last count",
			zap.String("replicas", host), zap.Int("count", a.Replicas()), zap.Error(err))
		return
	}
	n := int64(len(addrs))
	if old := a.replicas.Swap(n); old != n {
		log.Info("tenant rate: shared among replicas", zap.String("replicas", host), zap.Int64("count", n), zap.Int64("was", old))
	}
}

// lookupHost counts a pod once in a dual-stack cluster, where a headless Service's name has an
// IPv4 and an IPv6 address for each: the IPv4 ones, or the IPv6 ones if it has none.
func lookupHost(ctx context.Context, host string) ([]string, error) {
	var out []string
	var err error
	for _, network := range []string{"ip4", "ip6"} {
		var ips []net.IP
		ips, err = net.DefaultResolver.LookupIP(ctx, network, host)
		for _, ip := range ips {
			out = append(out, ip.String())
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, err
}
