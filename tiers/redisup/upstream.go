// Package redisup is kvresp's Redis upstream: a tiers.Upstream over an existing Redis
// deployment (one server, a primary managed by Sentinel, or a Redis Cluster) through
// go-redis. It is a plain transport: every call is bounded by its context, nothing is
// retried and there is no breaker (tiers.Proxy adds both; only a cluster client follows
// MOVED and ASK, and go-redis makes that the same loop as its retries, max_redirects of
// them), and error replies are sorted into those refusing one request, which wrap
// tiers.ErrRefused, and those telling of the upstream failing, which stay plain. A value is read with GET and PTTL in one round trip
// (one slot, so one node in a cluster) and written with SET ... PXAT, so that every
// operation states absolute times and may be repeated.
package redisup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"kvresp/tiers"
)

// Upstream is a Redis deployment used as a tiers.Upstream. It is safe for concurrent use.
type Upstream struct {
	kind    string
	c       redis.UniversalClient
	cluster *redis.ClusterClient // for Ping, which visits every primary; nil unless kind is redis-cluster
	streams *streams             // a single node's cut-through reads; nil for the others
}

var (
	_ tiers.Upstream = (*Upstream)(nil)
	_ tiers.Streamer = (*Upstream)(nil)
)

// Open returns an Upstream for the deployment rawURL names (see the forms below) without
// connecting to it: connections are made by the first calls, so the node starts while
// the upstream is down; Ping tells whether it is up.
//
//	redis://[user:password@]host[:port][/db][?params]           rediss:// for TLS
//	redis-sentinel://[user:password@]host[:port][,host[:port]...]/mastername[/db][?params]
//	redis-sentinel://[user:password@]host[:port][,...][/db]?master=mastername[&params]
//	redis-cluster://[user:password@]host[:port][,host[:port]...][?params]
//
// rediss-sentinel:// and rediss-cluster:// use TLS to every node. The credentials are the
// data nodes'; the sentinels' are sentinel_username and sentinel_password. Ports default
// to 6379, 26379 for sentinels. Other parameters are go-redis's (pool_size, read_timeout,
// min_idle_conns, protocol, ...); Options set explicitly override them. skip_verify=true
// accepts any TLS certificate. go-redis's own retries are off (max_retries, dialer_retries
// and a separate pool for pipelines, pipeline_pool_size, only if the URL asks for them).
func Open(rawURL string, o Options) (*Upstream, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	t, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	co, err := t.clientOptions(o)
	if err != nil {
		return nil, err
	}
	u := &Upstream{kind: t.kind}
	// What go-redis made of the settings, for the log line.
	var (
		poolSize              int
		dial, readTO, writeTO time.Duration
		poolKey               = "pool_size"
	)
	switch {
	case co.single != nil:
		c := redis.NewClient(co.single)
		eff := c.Options() // with go-redis's defaults and dialer
		u.c, u.streams = c, newStreams(eff)
		poolSize, dial, readTO, writeTO = eff.PoolSize, eff.DialTimeout, eff.ReadTimeout, eff.WriteTimeout
	case co.failover != nil:
		c := redis.NewFailoverClient(co.failover)
		u.c = c
		eff := c.Options()
		poolSize, dial, readTO, writeTO = eff.PoolSize, eff.DialTimeout, eff.ReadTimeout, eff.WriteTimeout
	default:
		c := redis.NewClusterClient(co.cluster)
		u.c, u.cluster = c, c
		eff := c.Options()
		poolSize, dial, readTO, writeTO = eff.PoolSize, eff.DialTimeout, eff.ReadTimeout, eff.WriteTimeout
		poolKey = "pool_size_per_node"
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Info("redis upstream opened", "kind", t.kind, "url", t.String(), poolKey, poolSize,
		"dial_timeout", dial, "read_timeout", readTO, "write_timeout", writeTO)
	return u, nil
}

// Name is "redis", "redis-sentinel" or "redis-cluster".
func (u *Upstream) Name() string { return u.kind }

// Ping checks that the upstream answers: the server, the master the sentinels name, or
// every primary of a cluster. Any error means it does not, so none is ErrRefused.
func (u *Upstream) Ping(ctx context.Context) error {
	var err error
	if u.cluster != nil {
		err = u.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.Ping(ctx).Err()
		})
	} else {
		err = u.c.Ping(ctx).Err()
	}
	if err != nil {
		return fmt.Errorf("redisup: PING: %w", err)
	}
	return nil
}

// do sends cmds in one round trip; their replies and errors are left in them. Even one
// command goes as a pipeline: when go-redis fails to set up a connection (AUTH, SELECT) a
// pipeline returns that failure apart from the commands, which it leaves untouched, where a
// lone command would carry the setup's error reply as if it were its own. That failure is
// what do returns, and it is the upstream's (never ErrRefused). The commands of one call
// name one key, so a cluster sends them to one node.
func (u *Upstream) do(ctx context.Context, op string, cmds ...redis.Cmder) error {
	p := u.c.Pipeline()
	for _, c := range cmds {
		_ = p.Process(ctx, c) // only queues
	}
	_, err := p.Exec(ctx)
	if err == nil {
		return nil
	}
	for _, c := range cmds {
		if c.Err() != nil {
			return nil // the commands ran, or failed on the way: theirs are the errors
		}
	}
	return fmt.Errorf("redisup: %s: %w", op, err)
}

// Get reads key's value and expiry with GET and PTTL in one round trip.
func (u *Upstream) Get(ctx context.Context, key string, alloc tiers.Alloc) (tiers.Item, bool, error) {
	get := redis.NewStringCmd(ctx, "get", key)
	exp, ok, err := u.withExpiry(ctx, "GET", key, get)
	if err != nil || !ok {
		return tiers.Item{}, false, err
	}
	v := get.Val()
	buf, err := alloc(len(v))
	if err != nil {
		return tiers.Item{}, false, allocFailed(len(v), err)
	}
	// go-redis reads a bulk reply into a buffer of its own and hands it over as a
	// string; a command cannot read into the caller's buffer (Cmder's reply reader is
	// unexported), so this copy into the slab buffer is the one the value costs.
	copy(buf.Bytes(), v)
	return tiers.Item{Buf: buf, ExpireAt: exp}, true, nil
}

// Stat reads key's size and expiry with STRLEN and PTTL in one round trip.
func (u *Upstream) Stat(ctx context.Context, key string) (tiers.Meta, bool, error) {
	strlen := redis.NewIntCmd(ctx, "strlen", key)
	exp, ok, err := u.withExpiry(ctx, "STRLEN", key, strlen)
	if err != nil || !ok {
		return tiers.Meta{}, false, err
	}
	return tiers.Meta{Size: strlen.Val(), ExpireAt: exp}, true, nil
}

// withExpiry sends cmd, a command reading key, and PTTL key in one round trip. It returns
// key's absolute expiry (0 for none), or false when cmd answered nil or PTTL said the key
// is absent (STRLEN answers 0 for an absent key; a key may go between GET and PTTL).
func (u *Upstream) withExpiry(ctx context.Context, op, key string, cmd redis.Cmder) (int64, bool, error) {
	// The expiry is counted from when the request left, so that it is never later than
	// the upstream's own.
	start := time.Now()
	pttl := redis.NewIntCmd(ctx, "pttl", key)
	if err := u.do(ctx, op, cmd, pttl); err != nil {
		return 0, false, err
	}
	switch err := cmd.Err(); {
	case errors.Is(err, redis.Nil):
		return 0, false, nil
	case err != nil:
		return 0, false, failed(op, err)
	}
	switch ms, err := pttl.Result(); {
	case err != nil:
		return 0, false, failed("PTTL", err)
	case ms == -2:
		return 0, false, nil
	case ms < 0:
		return 0, true, nil
	default:
		return start.UnixMilli() + ms, true, nil
	}
}

// Put stores it under key with SET key value [PXAT ms]; an expiry already past deletes
// the key instead, as storing it would.
func (u *Upstream) Put(ctx context.Context, key string, it tiers.Item) error {
	if it.ExpireAt != 0 && it.ExpireAt <= time.Now().UnixMilli() {
		_, err := u.Delete(ctx, key)
		return err
	}
	// The value goes to go-redis as the slab buffer's bytes: it writes them to the
	// socket without a copy, and the caller's reference keeps them alive until Put
	// returns (go-redis keeps no command past the call).
	val := []byte{}
	if it.Buf != nil {
		val = it.Buf.Bytes()
	}
	args := []any{"set", key, val}
	if it.ExpireAt != 0 {
		args = append(args, "pxat", it.ExpireAt)
	}
	cmd := redis.NewStatusCmd(ctx, args...)
	if err := u.do(ctx, "SET", cmd); err != nil {
		return err
	}
	if err := cmd.Err(); err != nil {
		if _, reply := err.(redis.Error); !reply && u.beyondBulkLimit(ctx, len(val)) {
			return fmt.Errorf("redisup: SET of a %d-byte value: %w: larger than the upstream's proto-max-bulk-len (%w)", len(val), tiers.ErrRefused, err)
		}
		return failed("SET", err)
	}
	return nil
}

// minBulkLimit is the smallest proto-max-bulk-len Redis accepts.
const minBulkLimit = 1 << 20

// beyondBulkLimit reports whether a value of n bytes is longer than the upstream's
// proto-max-bulk-len. Redis answers a longer bulk string with a protocol error and closes
// the connection while the value is still being written, so the writer sees the connection
// reset, not the reply; asking afterwards tells a refused value from a failing upstream
// (which does not answer this either).
func (u *Upstream) beyondBulkLimit(ctx context.Context, n int) bool {
	if n <= minBulkLimit {
		return false
	}
	cfg, err := u.c.ConfigGet(ctx, "proto-max-bulk-len").Result()
	if err != nil {
		return false
	}
	limit, err := strconv.ParseInt(cfg["proto-max-bulk-len"], 10, 64)
	return err == nil && int64(n) > limit
}

// SetExpire sets key's expiry with PEXPIREAT, or removes it with PERSIST when expireAt is
// 0. PERSIST answers 0 both for an absent key and for one without expiry, so EXISTS goes
// in the same round trip.
func (u *Upstream) SetExpire(ctx context.Context, key string, expireAt int64) (bool, error) {
	if expireAt != 0 {
		cmd := redis.NewIntCmd(ctx, "pexpireat", key, expireAt)
		if err := u.do(ctx, "PEXPIREAT", cmd); err != nil {
			return false, err
		}
		if err := cmd.Err(); err != nil {
			return false, failed("PEXPIREAT", err)
		}
		return cmd.Val() == 1, nil
	}
	persist := redis.NewIntCmd(ctx, "persist", key)
	exists := redis.NewIntCmd(ctx, "exists", key)
	if err := u.do(ctx, "PERSIST", persist, exists); err != nil {
		return false, err
	}
	if err := persist.Err(); err != nil {
		return false, failed("PERSIST", err)
	}
	if err := exists.Err(); err != nil {
		return false, failed("EXISTS", err)
	}
	return persist.Val() == 1 || exists.Val() == 1, nil
}

// Delete removes key with UNLINK, which frees a large value off the upstream's main
// thread.
func (u *Upstream) Delete(ctx context.Context, key string) (bool, error) {
	cmd := redis.NewIntCmd(ctx, "unlink", key)
	if err := u.do(ctx, "UNLINK", cmd); err != nil {
		return false, err
	}
	if err := cmd.Err(); err != nil {
		return false, failed("UNLINK", err)
	}
	return cmd.Val() > 0, nil
}

// Close closes the connections; calls after it fail.
func (u *Upstream) Close() error {
	if u.streams != nil {
		u.streams.close()
	}
	if err := u.c.Close(); err != nil {
		return fmt.Errorf("redisup: cannot close the %s upstream: %w", u.kind, err)
	}
	return nil
}
