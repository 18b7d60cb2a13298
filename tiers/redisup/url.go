package redisup

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The three deployments an upstream URL can name; each is also the Upstream's Name.
const (
	kindRedis    = "redis"
	kindSentinel = "redis-sentinel"
	kindCluster  = "redis-cluster"
)

// schemes maps a URL scheme to the deployment it names; the rediss forms add TLS.
var schemes = map[string]struct {
	kind string
	tls  bool
}{
	"redis":           {kindRedis, false},
	"rediss":          {kindRedis, true},
	"redis-sentinel":  {kindSentinel, false},
	"rediss-sentinel": {kindSentinel, true},
	"redis-cluster":   {kindCluster, false},
	"rediss-cluster":  {kindCluster, true},
}

// Well-known ports, used when a host has none: Redis's, and Sentinel's for the
// sentinel addresses of a redis-sentinel URL.
const (
	defaultPort         = 6379
	defaultSentinelPort = 26379
)

// reserved are go-redis query parameters that would say again what another part of the
// URL says; accepting them would leave two answers to one question.
var reserved = map[string]string{
	"addr":                    "list every host before the path, separated by commas",
	"master_name":             "name the master in the path (redis-sentinel://host/mymaster) or with master=",
	"username":                "put the user before the host (redis://user:password@host)",
	"password":                "put the password before the host (redis://user:password@host)",
	"context_timeout_enabled": "every call is always bounded by its context",
}

// target is what an upstream URL names. Query parameters that are not the URL's own
// (master, db, sentinel_username, sentinel_password, skip_verify) are go-redis's, kept in
// params and handed to go-redis's URL parser when the client options are built.
type target struct {
	kind           string
	tls            bool
	skipVerify     bool
	user, password string
	// addrs are host:port, in the order given: the server, the sentinels or the
	// cluster's seed nodes.
	addrs  []string
	master string // redis-sentinel only
	db     int
	// sentinelUser and sentinelPassword authenticate to the sentinels, which need not
	// share the data nodes' credentials.
	sentinelUser, sentinelPassword string
	params                         url.Values // nil when empty
}

// parseURL parses an upstream URL:
//
//	redis://[user:password@]host[:port][/db][?params]          one server (rediss: TLS)
//	redis-sentinel://[user:password@]host[:port][,host[:port]...]/master[/db][?params]
//	redis-sentinel://[user:password@]host[:port][,...][/db]?master=name[&params]
//	redis-cluster://[user:password@]host[:port][,host[:port]...][?params]
//
// The credentials are the data nodes'; sentinel_username and sentinel_password authenticate
// to the sentinels. db may also be given as ?db=. skip_verify=true (TLS only) accepts any
// certificate. Other parameters are go-redis's (pool_size, read_timeout, ...).
func parseURL(raw string) (*target, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("redisup: the upstream URL has no scheme; want redis://host:port, redis-sentinel://host:port/mastername or redis-cluster://host:port,host:port")
	}
	s, ok := schemes[strings.ToLower(scheme)]
	if !ok {
		return nil, fmt.Errorf("redisup: upstream URL scheme %q is none of redis, rediss, redis-sentinel, rediss-sentinel, redis-cluster, rediss-cluster", scheme)
	}
	t := &target{kind: s.kind, tls: s.tls}
	if strings.Contains(rest, "#") {
		return nil, errors.New("redisup: the upstream URL has a fragment (#...); percent-encode # as %23 in a password")
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		var err error
		if t.user, t.password, err = parseUserinfo(authority[:i]); err != nil {
			return nil, err
		}
		authority = authority[i+1:]
	}
	if authority == "" {
		return nil, fmt.Errorf("redisup: the upstream URL names no host; want %s://host:port", scheme)
	}
	port := defaultPort
	if t.kind == kindSentinel {
		port = defaultSentinelPort
	}
	for h := range strings.SplitSeq(authority, ",") {
		addr, err := parseHostPort(h, port)
		if err != nil {
			return nil, err
		}
		t.addrs = append(t.addrs, addr)
	}
	if t.kind == kindRedis && len(t.addrs) > 1 {
		return nil, fmt.Errorf("redisup: %s:// takes one host, got %d; use redis-sentinel:// or redis-cluster:// for several", scheme, len(t.addrs))
	}

	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("redisup: bad query in the upstream URL: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if why, ok := reserved[name]; ok {
			return nil, fmt.Errorf("redisup: upstream URL parameter %s is not accepted: %s", name, why)
		}
	}
	take := func(name string) (string, bool, error) {
		vs, ok := q[name]
		delete(q, name)
		if len(vs) > 1 {
			return "", false, fmt.Errorf("redisup: upstream URL parameter %s is given %d times", name, len(vs))
		}
		if !ok {
			return "", false, nil
		}
		return vs[0], true, nil
	}
	master, hasMaster, err := take("master")
	if err != nil {
		return nil, err
	}
	if hasMaster && t.kind != kindSentinel {
		return nil, fmt.Errorf("redisup: upstream URL parameter master is only for redis-sentinel://, not %s://", scheme)
	}
	pathDB, err := t.parsePath(path, master, hasMaster)
	if err != nil {
		return nil, err
	}
	db, hasDB, err := take("db")
	if err != nil {
		return nil, err
	}
	if hasDB {
		n, err := parseDB(db)
		if err != nil {
			return nil, err
		}
		if pathDB && n != t.db {
			return nil, fmt.Errorf("redisup: the upstream URL names database %d in its path and %d in db=", t.db, n)
		}
		t.db = n
	}
	if t.kind == kindCluster && t.db != 0 {
		return nil, fmt.Errorf("redisup: a Redis Cluster has only database 0, the upstream URL names %d", t.db)
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"sentinel_username", &t.sentinelUser}, {"sentinel_password", &t.sentinelPassword}} {
		v, ok, err := take(p.name)
		if err != nil {
			return nil, err
		}
		if ok && t.kind != kindSentinel {
			return nil, fmt.Errorf("redisup: upstream URL parameter %s is only for redis-sentinel://, not %s://", p.name, scheme)
		}
		*p.dst = v
	}
	sv, ok, err := take("skip_verify")
	if err != nil {
		return nil, err
	}
	if ok {
		if !t.tls {
			return nil, fmt.Errorf("redisup: upstream URL parameter skip_verify needs TLS (rediss:// and friends), not %s://", scheme)
		}
		switch sv {
		case "true", "1":
			t.skipVerify = true
		case "false", "0":
		default:
			return nil, fmt.Errorf("redisup: upstream URL parameter skip_verify is %q; want true or false", sv)
		}
	}
	if len(q) > 0 {
		t.params = q
	}
	return t, nil
}

// parsePath reads the database number and, for a sentinel URL, the master name: the path
// is /db, or /master[/db] for redis-sentinel unless master= names the master. It reports
// whether the path named a database.
func (t *target) parsePath(path, master string, hasMaster bool) (bool, error) {
	var segs []string
	if path != "" {
		segs = strings.Split(path[1:], "/")
		if segs[len(segs)-1] == "" {
			segs = segs[:len(segs)-1] // a trailing slash
		}
	}
	if slices.Contains(segs, "") {
		return false, errors.New("redisup: the upstream URL path has an empty segment (//)")
	}
	if t.kind == kindSentinel && !hasMaster {
		if len(segs) == 0 {
			return false, errors.New("redisup: the redis-sentinel URL names no master; want redis-sentinel://host:port/mastername or ?master=mastername")
		}
		m, err := url.PathUnescape(segs[0])
		if err != nil {
			return false, fmt.Errorf("redisup: bad master name in the upstream URL: %w", err)
		}
		master, segs = m, segs[1:]
	}
	if t.kind == kindSentinel {
		if master == "" {
			return false, errors.New("redisup: the redis-sentinel URL has an empty master name")
		}
		t.master = master
	}
	switch len(segs) {
	case 0:
		return false, nil
	case 1:
		n, err := parseDB(segs[0])
		t.db = n
		return true, err
	}
	want := "/db"
	switch {
	case t.kind == kindSentinel && hasMaster:
		want = "/db with master= given"
	case t.kind == kindSentinel:
		want = "/mastername/db"
	}
	return false, fmt.Errorf("redisup: the upstream URL path has %d segments too many; want %s", len(segs)-1, want)
}

func parseUserinfo(s string) (user, password string, err error) {
	u, p, _ := strings.Cut(s, ":")
	if user, err = url.PathUnescape(u); err != nil {
		return "", "", fmt.Errorf("redisup: bad user name in the upstream URL: %w", err)
	}
	if password, err = url.PathUnescape(p); err != nil {
		// The error would quote the password.
		return "", "", errors.New("redisup: bad percent-encoding in the upstream URL's password")
	}
	return user, password, nil
}

// parseHostPort accepts host, host:port, [ipv6] and [ipv6]:port.
func parseHostPort(s string, defPort int) (string, error) {
	if s == "" {
		return "", errors.New("redisup: empty host in the upstream URL's host list (two commas in a row, or one at an end?)")
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", fmt.Errorf("redisup: upstream host %q has no closing ]", s)
		}
		host = s[1:end]
		if after := s[end+1:]; after != "" {
			if after[0] != ':' {
				return "", fmt.Errorf("redisup: upstream host %q has text after ]", s)
			}
			port = after[1:]
		}
		if ip := net.ParseIP(host); ip == nil || !strings.Contains(host, ":") {
			return "", fmt.Errorf("redisup: upstream host %q is not an IPv6 address (zones are not supported)", s)
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
		}
		if strings.Contains(host, ":") {
			return "", fmt.Errorf("redisup: upstream host %q: put an IPv6 address in brackets, [::1]:6379", s)
		}
		if host == "" {
			return "", fmt.Errorf("redisup: upstream host %q has a port but no host", s)
		}
		for _, c := range []byte(host) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return "", fmt.Errorf("redisup: upstream host %q has a character (%q) no host name has", s, c)
			}
		}
	}
	p := defPort
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return "", fmt.Errorf("redisup: upstream host %q has a bad port; want 1 to 65535", s)
		}
		p = int(n)
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

func parseDB(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("redisup: upstream database %q is not a number from 0 to %d", s, 1<<31-1)
	}
	return int(n), nil
}

// String is the URL in canonical form with its passwords masked, for logs.
func (t *target) String() string { return t.format(true) }

// format returns the URL in canonical form: lower-case scheme, every port spelled out,
// the master in the path, go-redis's parameters sorted. Parsing it gives back t.
func (t *target) format(redact bool) string {
	var b strings.Builder
	if t.tls {
		b.WriteString(strings.Replace(t.kind, "redis", "rediss", 1))
	} else {
		b.WriteString(t.kind)
	}
	b.WriteString("://")
	mask := func(p string) string {
		if redact && p != "" {
			return "xxxxx"
		}
		return p
	}
	switch {
	case t.password != "":
		b.WriteString(url.UserPassword(t.user, mask(t.password)).String() + "@")
	case t.user != "":
		b.WriteString(url.User(t.user).String() + "@")
	}
	b.WriteString(strings.Join(t.addrs, ","))
	if t.kind == kindSentinel {
		b.WriteString("/" + url.PathEscape(t.master))
	}
	if t.db != 0 {
		b.WriteString("/" + strconv.Itoa(t.db))
	}
	q := maps.Clone(t.params)
	if q == nil {
		q = url.Values{}
	}
	if t.sentinelUser != "" {
		q.Set("sentinel_username", t.sentinelUser)
	}
	if t.sentinelPassword != "" {
		q.Set("sentinel_password", mask(t.sentinelPassword))
	}
	if t.skipVerify {
		q.Set("skip_verify", "true")
	}
	if len(q) > 0 {
		b.WriteString("?" + q.Encode())
	}
	return b.String()
}
