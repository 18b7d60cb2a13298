package resp

import (
	"math"
	"strconv"
	"strings"

	"kvresp/slab"
	"kvresp/store"
)

func init() {
	register(
		&command{name: "get", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: "string", since: "1.0.0", summary: "Returns the string value of a key.", fn: cmdGet},
		&command{name: "set", arity: -3, flags: flagWrite, first: 1, last: 1, step: 1, group: "string", since: "1.0.0", summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", fn: cmdSet},
		&command{name: "setnx", arity: 3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: "string", since: "1.0.0", summary: "Set the string value of a key only when the key doesn't exist.", fn: cmdSetNX},
		&command{name: "setex", arity: 4, flags: flagWrite, first: 1, last: 1, step: 1, group: "string", since: "2.0.0", summary: "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", fn: cmdSetEX},
		&command{name: "psetex", arity: 4, flags: flagWrite, first: 1, last: 1, step: 1, group: "string", since: "2.6.0", summary: "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", fn: cmdSetEX},
		&command{name: "getdel", arity: 2, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: "string", since: "6.2.0", summary: "Returns the string value of a key after deleting the key.", fn: cmdGetDel},
		&command{name: "getex", arity: -2, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: "string", since: "6.2.0", summary: "Returns the string value of a key after setting its expiration time.", fn: cmdGetEx},
		&command{name: "mget", arity: -2, flags: flagReadonly | flagFast, first: 1, last: -1, step: 1, group: "string", since: "1.0.0", summary: "Atomically returns the string values of one or more keys.", fn: cmdMGet},
		&command{name: "mset", arity: -3, flags: flagWrite, first: 1, last: -1, step: 2, group: "string", since: "1.0.1", summary: "Atomically creates or modifies the string values of one or more keys.", fn: cmdMSet},
		&command{name: "msetnx", arity: -3, flags: flagWrite, first: 1, last: -1, step: 2, group: "string", since: "1.0.1", summary: "Atomically modifies the string values of one or more keys only when all keys don't exist.", fn: cmdMSet},
		&command{name: "strlen", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: "string", since: "2.2.0", summary: "Returns the length of a string value.", fn: cmdStrlen},
	)
}

// replyValue sends a value from the store, or nil.
func (c *conn) replyValue(buf *slab.Buf, ok bool, err error) {
	switch {
	case err != nil && !ok:
		c.wr.error(storeError(err))
	case !ok:
		c.wr.null()
	default:
		c.wr.bulkBuf(buf) // one value: the serve loop flushes after the command
	}
}

func cmdGet(c *conn, req *request) {
	buf, fill, ok, err := c.s.store.GetStream(string(req.args[1]))
	if fill != nil {
		if err := c.wr.bulkStream(buf, fill); err != nil {
			c.fail(err)
		}
		return
	}
	c.replyValue(buf, ok, err)
}

// expiry is a parsed EX/PX/EXAT/PXAT/KEEPTTL option of SET.
type expiry struct {
	set     bool
	at      int64 // absolute Unix ms
	keepTTL bool
}

// parseExpireArg converts the argument of EX/PX/EXAT/PXAT into absolute Unix
// milliseconds, with Redis's errors for non-integers, non-positive values and
// overflow.
func parseExpireArg(unit string, arg []byte, now int64, cmd string) (int64, string) {
	n, err := strconv.ParseInt(string(arg), 10, 64)
	if err != nil {
		return 0, errNotInt
	}
	if n <= 0 {
		return 0, strings.Replace(errExpireTime, "%s", cmd, 1)
	}
	switch unit {
	case "ex", "exat":
		if n > math.MaxInt64/1000 {
			return 0, strings.Replace(errExpireTime, "%s", cmd, 1)
		}
		n *= 1000
	}
	if unit == "ex" || unit == "px" {
		if n > math.MaxInt64-now {
			return 0, strings.Replace(errExpireTime, "%s", cmd, 1)
		}
		n += now
	}
	return n, ""
}

// parseSetOptions parses SET's options after key and value. now is called
// only for a relative expiry: most SETs have none, and reading the clock is
// a measurable share of a small SET.
func parseSetOptions(args [][]byte, now func() int64) (store.SetOptions, string) {
	var o store.SetOptions
	var exp expiry
	for i := 0; i < len(args); i++ {
		opt := strings.ToLower(string(args[i]))
		switch opt {
		case "nx", "xx":
			if o.Cond != store.Always {
				return o, errSyntax
			}
			if opt == "nx" {
				o.Cond = store.IfAbsent
			} else {
				o.Cond = store.IfPresent
			}
		case "get":
			if o.Get {
				return o, errSyntax
			}
			o.Get = true
		case "keepttl":
			if exp.set || exp.keepTTL {
				return o, errSyntax
			}
			exp.keepTTL = true
		case "ex", "px", "exat", "pxat":
			if exp.set || exp.keepTTL || i+1 >= len(args) {
				return o, errSyntax
			}
			at, e := parseExpireArg(opt, args[i+1], now(), "set")
			if e != "" {
				return o, e
			}
			exp.set, exp.at = true, at
			i++
		default:
			return o, errSyntax
		}
	}
	o.ExpireAt = exp.at
	o.KeepTTL = exp.keepTTL
	return o, ""
}

func cmdSet(c *conn, req *request) {
	o, e := parseSetOptions(req.args[3:], c.s.store.Now)
	if e != "" {
		c.wr.error(e)
		return
	}
	c.set(req, o)
}

// set stores argument 2 under argument 1 and replies as SET does.
func (c *conn) set(req *request, o store.SetOptions) {
	buf, err := c.valueBuf(req, 2)
	if err != nil {
		c.wr.error(oomReply(err))
		return
	}
	res, err := c.s.store.Set(string(req.args[1]), buf, o)
	buf.Release()
	switch {
	case err != nil:
		c.wr.error(storeError(err)) // Set released any old value
	case o.Get:
		c.replyValue(res.Old, res.Old != nil, nil)
	case res.Stored:
		c.wr.ok()
	default:
		c.wr.null()
	}
}

func cmdSetNX(c *conn, req *request) {
	buf, err := c.valueBuf(req, 2)
	if err != nil {
		c.wr.error(oomReply(err))
		return
	}
	res, err := c.s.store.Set(string(req.args[1]), buf, store.SetOptions{Cond: store.IfAbsent})
	buf.Release()
	if err != nil {
		c.wr.error(storeError(err))
		return
	}
	c.wr.int(b2i(res.Stored))
}

// cmdSetEX is SETEX key seconds value and PSETEX key ms value.
func cmdSetEX(c *conn, req *request) {
	name := strings.ToLower(string(req.args[0]))
	unit := "ex"
	if name == "psetex" {
		unit = "px"
	}
	at, e := parseExpireArg(unit, req.args[2], c.s.store.Now(), name)
	if e != "" {
		c.wr.error(e)
		return
	}
	// Reorder to SET's layout: key, value.
	req.args[2], req.args[3] = req.args[3], req.args[2]
	req.bufs[2], req.bufs[3] = req.bufs[3], req.bufs[2]
	c.set(req, store.SetOptions{ExpireAt: at})
}

func cmdGetDel(c *conn, req *request) {
	buf, ok, err := c.s.store.GetDel(string(req.args[1]))
	c.replyValue(buf, ok, err)
}

// parseGetExOptions parses GETEX's options.
func parseGetExOptions(args [][]byte, now int64) (store.ExpireChange, string) {
	var ch store.ExpireChange
	for i := 0; i < len(args); i++ {
		opt := strings.ToLower(string(args[i]))
		switch opt {
		case "persist":
			if ch.Set {
				return ch, errSyntax
			}
			ch.Set = true
		case "ex", "px", "exat", "pxat":
			if ch.Set || i+1 >= len(args) {
				return ch, errSyntax
			}
			at, e := parseExpireArg(opt, args[i+1], now, "getex")
			if e != "" {
				return ch, e
			}
			ch.Set, ch.ExpireAt = true, at
			i++
		default:
			return ch, errSyntax
		}
	}
	return ch, ""
}

func cmdGetEx(c *conn, req *request) {
	ch, e := parseGetExOptions(req.args[2:], c.s.store.Now())
	if e != "" {
		c.wr.error(e)
		return
	}
	buf, ok, err := c.s.store.GetEx(string(req.args[1]), ch)
	c.replyValue(buf, ok, err)
}

func cmdMGet(c *conn, req *request) {
	c.wr.array(len(req.args) - 1)
	for _, k := range req.args[1:] {
		buf, ok, err := c.s.store.Get(string(k))
		if err != nil || !ok {
			// MGET answers nil for what it cannot read, as for a missing key.
			c.wr.null()
			continue
		}
		c.wr.bulkBuf(buf)
		if err := c.flushIfFull(); err != nil {
			c.fail(err)
			return
		}
	}
}

// cmdMSet is MSET and MSETNX.
func cmdMSet(c *conn, req *request) {
	nx := strings.EqualFold(string(req.args[0]), "msetnx")
	if len(req.args)%2 != 1 {
		c.wrongArgs(strings.ToLower(string(req.args[0])))
		return
	}
	pairs := make([]store.Pair, 0, len(req.args)/2)
	defer func() {
		for _, p := range pairs {
			p.Buf.Release()
		}
	}()
	for i := 1; i < len(req.args); i += 2 {
		buf, err := c.valueBuf(req, i+1)
		if err != nil {
			c.wr.error(oomReply(err))
			return
		}
		pairs = append(pairs, store.Pair{Key: string(req.args[i]), Buf: buf})
	}
	ok, err := c.s.store.MSet(pairs, nx)
	switch {
	case err != nil:
		c.wr.error(storeError(err))
	case nx:
		c.wr.int(b2i(ok))
	default:
		c.wr.ok()
	}
}

func cmdStrlen(c *conn, req *request) {
	m, ok, err := c.s.store.Stat(string(req.args[1]))
	if err != nil && !ok {
		c.wr.error(storeError(err))
		return
	}
	c.wr.int(m.Size)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
