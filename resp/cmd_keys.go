package resp

import (
	"math"
	"strconv"
	"strings"

	"kvresp/store"
	"kvresp/tiers"
)

func init() {
	register(
		&command{name: "del", arity: -2, flags: flagWrite, first: 1, last: -1, step: 1, group: "generic", since: "1.0.0", summary: "Deletes one or more keys.", fn: cmdDel},
		&command{name: "unlink", arity: -2, flags: flagWrite | flagFast, first: 1, last: -1, step: 1, group: "generic", since: "4.0.0", summary: "Asynchronously deletes one or more keys.", fn: cmdDel},
		&command{name: "exists", arity: -2, flags: flagReadonly | flagFast, first: 1, last: -1, step: 1, group: "generic", since: "1.0.0", summary: "Determines whether one or more keys exist.", fn: cmdExists},
		&command{name: "touch", arity: -2, flags: flagReadonly | flagFast, first: 1, last: -1, step: 1, group: "generic", since: "3.2.1", summary: "Returns the number of existing keys out of those specified after updating the time they were last accessed.", fn: cmdTouch},
		&command{name: "type", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: "generic", since: "1.0.0", summary: "Determines the type of value stored at a key.", fn: cmdType},
		&command{name: "ttl", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: "generic", since: "1.0.0", summary: "Returns the expiration time in seconds of a key.", fn: cmdTTL},
		&command{name: "pttl", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: "generic", since: "2.6.0", summary: "Returns the expiration time in milliseconds of a key.", fn: cmdTTL},
		&command{name: "expiretime", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: "generic", since: "7.0.0", summary: "Returns the expiration time of a key as a Unix timestamp.", fn: cmdTTL},
		&command{name: "pexpiretime", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: "generic", since: "7.0.0", summary: "Returns the expiration time of a key as a Unix milliseconds timestamp.", fn: cmdTTL},
		&command{name: "expire", arity: -3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: "generic", since: "1.0.0", summary: "Sets the expiration time of a key in seconds.", fn: cmdExpire},
		&command{name: "pexpire", arity: -3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: "generic", since: "2.6.0", summary: "Sets the expiration time of a key in milliseconds.", fn: cmdExpire},
		&command{name: "expireat", arity: -3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: "generic", since: "1.2.0", summary: "Sets the expiration time of a key to a Unix timestamp.", fn: cmdExpire},
		&command{name: "pexpireat", arity: -3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: "generic", since: "2.6.0", summary: "Sets the expiration time of a key to a Unix milliseconds timestamp.", fn: cmdExpire},
		&command{name: "persist", arity: 2, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: "generic", since: "2.2.0", summary: "Removes the expiration time of a key.", fn: cmdPersist},
		&command{name: "scan", arity: -2, flags: flagReadonly, group: "generic", since: "2.8.0", summary: "Iterates over the key names in the database.", fn: cmdScan},
		&command{name: "keys", arity: 2, flags: flagReadonly, group: "generic", since: "1.0.0", summary: "Returns all key names that match a pattern.", fn: cmdKeys},
		&command{name: "randomkey", arity: 1, flags: flagReadonly, group: "generic", since: "1.0.0", summary: "Returns a random key name from the database.", fn: cmdRandomKey},
		&command{name: "dbsize", arity: 1, flags: flagReadonly | flagFast, group: "server", since: "1.0.0", summary: "Returns the number of keys in the database.", fn: cmdDBSize},
		&command{name: "flushdb", arity: -1, flags: flagWrite, group: "server", since: "1.0.0", summary: "Removes all keys from the current database.", fn: cmdFlush},
		&command{name: "flushall", arity: -1, flags: flagWrite, group: "server", since: "1.0.0", summary: "Removes all keys from all databases.", fn: cmdFlush},
	)
}

func cmdDel(c *conn, req *request) {
	var n int64
	for _, k := range req.args[1:] {
		ok, err := c.s.store.Delete(string(k))
		if err != nil {
			c.wr.error(storeError(err))
			return
		}
		n += b2i(ok)
	}
	c.wr.int(n)
}

func cmdExists(c *conn, req *request) {
	var n int64
	for _, k := range req.args[1:] {
		ok, err := c.s.store.Exists(string(k))
		if err != nil && !ok {
			c.wr.error(storeError(err))
			return
		}
		n += b2i(ok)
	}
	c.wr.int(n)
}

func cmdTouch(c *conn, req *request) {
	var n int64
	for _, k := range req.args[1:] {
		ok, err := c.s.store.Touch(string(k))
		if err != nil && !ok {
			c.wr.error(storeError(err))
			return
		}
		n += b2i(ok)
	}
	c.wr.int(n)
}

func cmdType(c *conn, req *request) {
	ok, err := c.s.store.Exists(string(req.args[1]))
	if err != nil && !ok {
		c.wr.error(storeError(err))
		return
	}
	if ok {
		c.wr.simple("string")
	} else {
		c.wr.simple("none")
	}
}

// cmdTTL is TTL, PTTL, EXPIRETIME and PEXPIRETIME.
func cmdTTL(c *conn, req *request) {
	m, ok, err := c.s.store.Stat(string(req.args[1]))
	if err != nil && !ok {
		c.wr.error(storeError(err))
		return
	}
	switch {
	case !ok:
		c.wr.int(-2)
		return
	case m.ExpireAt == 0:
		c.wr.int(-1)
		return
	}
	left := max(m.ExpireAt-c.s.store.Now(), 0)
	switch strings.ToLower(string(req.args[0])) {
	case "ttl":
		c.wr.int((left + 500) / 1000)
	case "pttl":
		c.wr.int(left)
	case "expiretime":
		c.wr.int(m.ExpireAt / 1000)
	default:
		c.wr.int(m.ExpireAt)
	}
}

// parseExpireCmd parses EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT's time and flags
// into an absolute Unix ms time (which may be in the past).
func parseExpireCmd(name string, args [][]byte, now int64) (int64, store.ExpireCond, string) {
	n, err := strconv.ParseInt(string(args[0]), 10, 64)
	if err != nil {
		return 0, 0, errNotInt
	}
	bad := "ERR invalid expire time in '" + name + "' command"
	if name == "expire" || name == "expireat" {
		if n > math.MaxInt64/1000 || n < math.MinInt64/1000 {
			return 0, 0, bad
		}
		n *= 1000
	}
	if name == "expire" || name == "pexpire" {
		if (n > 0 && n > math.MaxInt64-now) || (n < 0 && n < math.MinInt64+now) {
			return 0, 0, bad
		}
		n += now
	}
	cond := store.ExpireAlways
	for _, a := range args[1:] {
		switch strings.ToLower(string(a)) {
		case "nx":
			cond |= store.ExpireNX
		case "xx":
			cond |= store.ExpireXX
		case "gt":
			cond |= store.ExpireGT
		case "lt":
			cond |= store.ExpireLT
		default:
			return 0, 0, "ERR Unsupported option " + sanitize(string(a), 64)
		}
	}
	if cond&store.ExpireNX != 0 && cond&^store.ExpireNX != 0 {
		return 0, 0, "ERR NX and XX, GT or LT options at the same time are not compatible"
	}
	if cond&store.ExpireGT != 0 && cond&store.ExpireLT != 0 {
		return 0, 0, "ERR GT and LT options at the same time are not compatible"
	}
	if n <= 0 {
		// A time before the epoch means "already expired".
		n = 1
	}
	return n, cond, ""
}

func cmdExpire(c *conn, req *request) {
	name := strings.ToLower(string(req.args[0]))
	at, cond, e := parseExpireCmd(name, req.args[2:], c.s.store.Now())
	if e != "" {
		c.wr.error(e)
		return
	}
	ok, err := c.s.store.Expire(string(req.args[1]), at, cond)
	if err != nil && !ok {
		c.wr.error(storeError(err))
		return
	}
	c.wr.int(b2i(ok))
}

func cmdPersist(c *conn, req *request) {
	ok, err := c.s.store.Persist(string(req.args[1]))
	if err != nil && !ok {
		c.wr.error(storeError(err))
		return
	}
	c.wr.int(b2i(ok))
}

// scanOptions are SCAN's MATCH, COUNT and TYPE.
type scanOptions struct {
	match string
	count int
	typ   string
}

func parseScanOptions(args [][]byte) (scanOptions, string) {
	o := scanOptions{count: 10}
	for i := 0; i < len(args); i++ {
		if i+1 >= len(args) {
			return o, errSyntax
		}
		switch strings.ToLower(string(args[i])) {
		case "match":
			o.match = string(args[i+1])
		case "count":
			n, err := strconv.ParseInt(string(args[i+1]), 10, 64)
			if err != nil {
				return o, errNotInt
			}
			if n < 1 {
				return o, errSyntax
			}
			o.count = int(min(n, 1<<20))
		case "type":
			o.typ = strings.ToLower(string(args[i+1]))
		default:
			return o, errSyntax
		}
		i++
	}
	return o, ""
}

func cmdScan(c *conn, req *request) {
	cursor, err := strconv.ParseUint(string(req.args[1]), 10, 64)
	if err != nil {
		c.wr.error("ERR invalid cursor")
		return
	}
	o, e := parseScanOptions(req.args[2:])
	if e != "" {
		c.wr.error(e)
		return
	}
	var keys []string
	next := c.s.store.Scan(cursor, o.count, func(key string, _ tiers.Meta) {
		if o.typ != "" && o.typ != "string" {
			return
		}
		if o.match != "" && o.match != "*" && !globMatch(o.match, key) {
			return
		}
		keys = append(keys, key)
	})
	c.wr.array(2)
	c.wr.bulkString(strconv.FormatUint(next, 10))
	c.wr.bulkStrings(keys)
}

func cmdKeys(c *conn, req *request) {
	pat := string(req.args[1])
	var keys []string
	var cursor uint64
	for {
		cursor = c.s.store.Scan(cursor, 1024, func(key string, _ tiers.Meta) {
			if pat == "*" || globMatch(pat, key) {
				keys = append(keys, key)
			}
		})
		if cursor == 0 {
			break
		}
	}
	c.wr.bulkStrings(keys)
}

func cmdRandomKey(c *conn, req *request) {
	k, ok := c.s.store.RandomKey()
	if !ok {
		c.wr.null()
		return
	}
	c.wr.bulkString(k)
}

func cmdDBSize(c *conn, req *request) { c.wr.int(int64(c.s.store.Len())) }

// cmdFlush is FLUSHDB and FLUSHALL [ASYNC|SYNC].
func cmdFlush(c *conn, req *request) {
	if len(req.args) > 2 {
		c.wr.error(errSyntax)
		return
	}
	if len(req.args) == 2 {
		switch strings.ToLower(string(req.args[1])) {
		case "async", "sync":
		default:
			c.wr.error(errSyntax)
			return
		}
	}
	c.s.store.Flush()
	c.wr.ok()
}
