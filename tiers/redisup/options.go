package redisup

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options tune the connections to the upstream; zero values mean defaults. A field set here
// wins over the same setting in the URL's query (pool_size, dial_timeout, read_timeout,
// write_timeout), which wins over the default: Options carry what the operator set for this
// node, the URL describes the deployment and may be shared by the fleet.
type Options struct {
	// PoolSize is how many connections go-redis pools per server (a burst opens more,
	// unless max_active_conns in the URL caps them); 0 means go-redis's default, 10 per
	// CPU, 5 per CPU and node in a cluster.
	PoolSize int
	// DialTimeout bounds establishing a connection; 0 means 5s.
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound reading a reply and writing a command, a
	// backstop for calls whose context has no deadline (with one, the earlier applies);
	// 0 means 30s, long enough for an 80 MiB value over 100 Mbit/s, negative means none.
	ReadTimeout, WriteTimeout time.Duration
	// Logger receives one line when the upstream is opened; nil means slog.Default().
	Logger *slog.Logger
}

const (
	defaultDialTimeout = 5 * time.Second
	defaultIOTimeout   = 30 * time.Second
)

// Validate reports every problem with o at once.
func (o Options) Validate() error {
	var errs []error
	if o.PoolSize < 0 || o.PoolSize > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("redisup: pool size is %d; set it to 0 (default) or a positive number of connections", o.PoolSize))
	}
	if o.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("redisup: dial timeout is %v; set it to 0 (default %v) or a positive duration", o.DialTimeout, defaultDialTimeout))
	}
	return errors.Join(errs...)
}

// clientOptions are the go-redis options for the deployment a target names; exactly one
// is set, after kind.
type clientOptions struct {
	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// tunables point at the settings the three go-redis option structs share, so that one
// function applies kvresp's precedence and defaults to all of them.
type tunables struct {
	poolSize                    *int
	dialTimeout                 *time.Duration
	readTimeout, writeTimeout   *time.Duration
	maxRetries                  *int
	dialerRetries               *int // nil for a single server: its URL parser has no dialer_retries
	pipelinePoolSize            *int
	contextTimeout              *bool
	minIdle, maxIdle, maxActive *int
	maxConcurrentDials          *int
	// nil but for a sentinel; a cluster may route reads to replicas if the URL says so.
	routeByLatency, routeRandomly, replicaOnly *bool
}

// clientOptions builds the go-redis options for t with o applied.
func (t *target) clientOptions(o Options) (clientOptions, error) {
	// go-redis parses its own query parameters (and rejects unknown ones); what the rest
	// of the URL says is set from t below, so the host here is a placeholder.
	u := url.URL{Scheme: "redis", Host: "placeholder", RawQuery: t.params.Encode()}
	var tlsConf *tls.Config
	if t.tls {
		// No ServerName: crypto/tls takes it from each address dialed, which is what
		// a sentinel's master or a cluster's nodes need.
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.skipVerify}
	}
	var (
		co  clientOptions
		tun tunables
	)
	switch t.kind {
	case kindRedis:
		ro, err := redis.ParseURL(u.String())
		if err != nil {
			return co, fmt.Errorf("redisup: bad upstream URL parameter: %w", err)
		}
		ro.Addr, ro.Username, ro.Password, ro.DB, ro.TLSConfig = t.addrs[0], t.user, t.password, t.db, tlsConf
		co.single = ro
		tun = tunables{
			poolSize: &ro.PoolSize, dialTimeout: &ro.DialTimeout, readTimeout: &ro.ReadTimeout, writeTimeout: &ro.WriteTimeout,
			maxRetries: &ro.MaxRetries, dialerRetries: &ro.DialerRetries, pipelinePoolSize: &ro.PipelinePoolSize, contextTimeout: &ro.ContextTimeoutEnabled,
			minIdle: &ro.MinIdleConns, maxIdle: &ro.MaxIdleConns, maxActive: &ro.MaxActiveConns, maxConcurrentDials: &ro.MaxConcurrentDials,
		}
	case kindSentinel:
		fo, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return co, fmt.Errorf("redisup: bad upstream URL parameter: %w", err)
		}
		fo.SentinelAddrs, fo.MasterName, fo.DB, fo.TLSConfig = t.addrs, t.master, t.db, tlsConf
		fo.Username, fo.Password = t.user, t.password
		fo.SentinelUsername, fo.SentinelPassword = t.sentinelUser, t.sentinelPassword
		co.failover = fo
		tun = tunables{
			poolSize: &fo.PoolSize, dialTimeout: &fo.DialTimeout, readTimeout: &fo.ReadTimeout, writeTimeout: &fo.WriteTimeout,
			maxRetries: &fo.MaxRetries, dialerRetries: &fo.DialerRetries, pipelinePoolSize: &fo.PipelinePoolSize, contextTimeout: &fo.ContextTimeoutEnabled,
			minIdle: &fo.MinIdleConns, maxIdle: &fo.MaxIdleConns, maxActive: &fo.MaxActiveConns, maxConcurrentDials: &fo.MaxConcurrentDials,
			routeByLatency: &fo.RouteByLatency, routeRandomly: &fo.RouteRandomly, replicaOnly: &fo.ReplicaOnly,
		}
	case kindCluster:
		cl, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return co, fmt.Errorf("redisup: bad upstream URL parameter: %w", err)
		}
		cl.Addrs, cl.Username, cl.Password, cl.TLSConfig = t.addrs, t.user, t.password, tlsConf
		co.cluster = cl
		tun = tunables{
			poolSize: &cl.PoolSize, dialTimeout: &cl.DialTimeout, readTimeout: &cl.ReadTimeout, writeTimeout: &cl.WriteTimeout,
			maxRetries: &cl.MaxRetries, dialerRetries: &cl.DialerRetries, pipelinePoolSize: &cl.PipelinePoolSize, contextTimeout: &cl.ContextTimeoutEnabled,
			minIdle: &cl.MinIdleConns, maxIdle: &cl.MaxIdleConns, maxActive: &cl.MaxActiveConns, maxConcurrentDials: &cl.MaxConcurrentDials,
		}
	default:
		panic("BUG: redisup: unknown upstream kind " + t.kind)
	}
	return co, tun.apply(o, t.params)
}

// apply sets kvresp's precedence (Options, then the URL, then the default) and the
// settings that make go-redis a plain transport under tiers.Proxy, then checks what
// go-redis would panic on.
func (tun tunables) apply(o Options, q url.Values) error {
	if o.PoolSize > 0 {
		*tun.poolSize = o.PoolSize
	}
	if *tun.dialTimeout < 0 { // go-redis turns dial_timeout=0 into a deadline in the past
		return errors.New("redisup: upstream URL parameter dial_timeout must be a positive duration")
	}
	duration(tun.dialTimeout, o.DialTimeout, q.Has("dial_timeout"), defaultDialTimeout)
	duration(tun.readTimeout, o.ReadTimeout, q.Has("read_timeout"), defaultIOTimeout)
	duration(tun.writeTimeout, o.WriteTimeout, q.Has("write_timeout"), defaultIOTimeout)
	// Proxy retries; a second layer of retries inside go-redis would multiply them and
	// hide failures from the breaker. The URL may still ask for them.
	if !q.Has("max_retries") {
		*tun.maxRetries = -1
	}
	if !q.Has("dialer_retries") {
		*tun.dialerRetries = 1
	}
	// Get and Stat are pipelines; one pool, sized by PoolSize, is easier to reason
	// about than go-redis's extra pipeline pool (which the URL may still ask for).
	if !q.Has("pipeline_pool_size") {
		*tun.pipelinePoolSize = -1
	}
	*tun.contextTimeout = true

	var errs []error
	for _, f := range []struct {
		name string
		v    int
		min  int
	}{
		{"pool_size", *tun.poolSize, 0}, {"min_idle_conns", *tun.minIdle, 0}, {"max_idle_conns", *tun.maxIdle, 0},
		{"max_active_conns", *tun.maxActive, 0}, {"max_concurrent_dials", *tun.maxConcurrentDials, math.MinInt32},
		{"pipeline_pool_size", *tun.pipelinePoolSize, math.MinInt32},
	} {
		if f.v < f.min || f.v > math.MaxInt32 {
			errs = append(errs, fmt.Errorf("redisup: upstream URL parameter %s is %d; want %d to %d", f.name, f.v, f.min, math.MaxInt32))
		}
	}
	for _, f := range []struct {
		name string
		v    *bool
	}{{"route_by_latency", tun.routeByLatency}, {"route_randomly", tun.routeRandomly}, {"replica_only", tun.replicaOnly}} {
		if f.v != nil && *f.v {
			// go-redis's failover client panics on the first two; the third would send
			// writes to replicas.
			errs = append(errs, fmt.Errorf("redisup: upstream URL parameter %s is not supported: the upstream reads and writes the master", f.name))
		}
	}
	return errors.Join(errs...)
}

// duration applies the precedence to one timeout: a positive Options value, a negative
// one (none: go-redis's -1), the URL's value, the default.
func duration(dst *time.Duration, opt time.Duration, inURL bool, def time.Duration) {
	switch {
	case opt > 0:
		*dst = opt
	case opt < 0:
		*dst = -1
	case !inURL:
		*dst = def
	}
}
