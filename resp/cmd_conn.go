package resp

import (
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// helloServer and helloVersion are what HELLO and INFO say the server is:
// kvresp answers as the Redis version whose commands and replies it follows,
// because clients pick features by it.
const (
	helloServer  = "redis"
	helloVersion = "7.2.4"
)

func init() {
	register(
		&command{name: "ping", arity: -1, flags: flagFast, group: "connection", since: "1.0.0", summary: "Returns the server's liveliness response.", fn: cmdPing},
		&command{name: "echo", arity: 2, flags: flagFast, group: "connection", since: "1.0.0", summary: "Returns the given string.", fn: cmdEcho},
		&command{name: "hello", arity: -1, flags: flagNoAuth | flagFast, group: "connection", since: "6.0.0", summary: "Handshakes with the Redis server.", fn: cmdHello},
		&command{name: "auth", arity: -2, flags: flagNoAuth | flagFast, group: "connection", since: "1.0.0", summary: "Authenticates the connection.", fn: cmdAuth},
		&command{name: "select", arity: 2, flags: flagFast, group: "connection", since: "1.0.0", summary: "Changes the selected database.", fn: cmdSelect},
		&command{name: "quit", arity: -1, flags: flagNoAuth | flagFast, group: "connection", since: "1.0.0", summary: "Closes the connection.", fn: cmdQuit},
		&command{name: "reset", arity: 1, flags: flagNoAuth | flagFast, group: "connection", since: "6.2.0", summary: "Resets the connection.", fn: cmdReset},
		&command{name: "client", arity: -2, group: "connection", since: "2.4.0", summary: "A container for client connection commands.", fn: cmdClient, subs: clientSubs()},
	)
}

func cmdPing(c *conn, req *request) {
	switch len(req.args) {
	case 1:
		c.wr.simple("PONG")
	case 2:
		c.wr.bulk(req.args[1])
	default:
		c.wrongArgs("ping")
	}
}

func cmdEcho(c *conn, req *request) { c.wr.bulk(req.args[1]) }

// checkPassword compares in constant time.
func (c *conn) checkPassword(user, pass string) bool {
	want := *c.s.requirepass.Load()
	if user != "default" {
		return false
	}
	if want == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(pass), []byte(want)) == 1
}

const errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."

func cmdAuth(c *conn, req *request) {
	user, pass := "default", string(req.args[1])
	switch len(req.args) {
	case 2:
		if *c.s.requirepass.Load() == "" {
			c.wr.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			return
		}
	case 3:
		user, pass = string(req.args[1]), string(req.args[2])
	default:
		c.wr.error(errSyntax)
		return
	}
	if !c.checkPassword(user, pass) {
		c.wr.error(errWrongPass)
		return
	}
	c.authed = true
	c.wr.ok()
}

// cmdHello is HELLO [protover [AUTH username password] [SETNAME clientname]].
func cmdHello(c *conn, req *request) {
	args := req.args[1:]
	proto := c.wr.proto
	if len(args) > 0 {
		v, err := strconv.ParseInt(string(args[0]), 10, 64)
		if err != nil {
			c.wr.error("ERR Protocol version is not an integer or out of range")
			return
		}
		if v < 2 || v > 3 {
			c.wr.error("NOPROTO unsupported protocol version")
			return
		}
		proto = int(v)
		args = args[1:]
	}
	var user, pass, name string
	auth, setName := false, false
	for i := 0; i < len(args); i++ {
		switch strings.ToLower(string(args[i])) {
		case "auth":
			if i+2 >= len(args) {
				c.wr.error("ERR Syntax error in HELLO option 'auth'")
				return
			}
			user, pass, auth = string(args[i+1]), string(args[i+2]), true
			i += 2
		case "setname":
			if i+1 >= len(args) {
				c.wr.error("ERR Syntax error in HELLO option 'setname'")
				return
			}
			name, setName = string(args[i+1]), true
			if !validClientName(name) {
				c.wr.error("ERR Client names cannot contain spaces, newlines or special characters.")
				return
			}
			i++
		default:
			c.wr.error("ERR Syntax error in HELLO option '" + sanitize(string(args[i]), 64) + "'")
			return
		}
	}
	if auth {
		if !c.checkPassword(user, pass) {
			c.wr.error(errWrongPass)
			return
		}
		c.authed = true
	}
	if !c.authed {
		c.wr.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName {
		c.mu.Lock()
		c.name = name
		c.mu.Unlock()
	}
	c.setProto(proto)
	c.wr.mapHeader(7)
	c.wr.bulkString("server")
	c.wr.bulkString(helloServer)
	c.wr.bulkString("version")
	c.wr.bulkString(helloVersion)
	c.wr.bulkString("proto")
	c.wr.int(int64(proto))
	c.wr.bulkString("id")
	c.wr.int(c.id)
	c.wr.bulkString("mode")
	c.wr.bulkString("standalone")
	c.wr.bulkString("role")
	c.wr.bulkString("master")
	c.wr.bulkString("modules")
	c.wr.array(0)
}

// cmdSelect accepts database 0 only: kvresp has one keyspace.
func cmdSelect(c *conn, req *request) {
	n, err := strconv.ParseInt(string(req.args[1]), 10, 64)
	if err != nil {
		c.wr.error(errNotInt)
		return
	}
	if n != 0 {
		c.wr.error("ERR DB index is out of range")
		return
	}
	c.wr.ok()
}

func cmdQuit(c *conn, req *request) {
	c.wr.ok()
	c.closeAfter = true
}

// cmdReset returns the connection to its state after connect: RESP2, no
// name, and unauthenticated when a password is set.
func cmdReset(c *conn, req *request) {
	c.setProto(2)
	c.mu.Lock()
	c.name = ""
	c.mu.Unlock()
	c.authed = *c.s.requirepass.Load() == ""
	c.wr.simple("RESET")
}

// validClientName is Redis's rule: printable ASCII, no spaces.
func validClientName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}

var clientHandlers = map[string]func(c *conn, req *request){
	"setname": func(c *conn, req *request) {
		if len(req.args) != 3 {
			c.wrongArgs("client|setname")
			return
		}
		name := string(req.args[2])
		if !validClientName(name) {
			c.wr.error("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.mu.Lock()
		c.name = name
		c.mu.Unlock()
		c.wr.ok()
	},
	"getname": func(c *conn, req *request) {
		c.mu.Lock()
		name := c.name
		c.mu.Unlock()
		if name == "" {
			c.wr.null()
			return
		}
		c.wr.bulkString(name)
	},
	"setinfo": func(c *conn, req *request) {
		if len(req.args) != 4 {
			c.wrongArgs("client|setinfo")
			return
		}
		v := string(req.args[3])
		if !validClientName(v) && v != "" {
			c.wr.error("ERR " + strings.ToUpper(string(req.args[2])) + " cannot contain spaces, newlines or special characters.")
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		switch strings.ToLower(string(req.args[2])) {
		case "lib-name":
			c.libName = v
		case "lib-ver":
			c.libVer = v
		default:
			c.wr.error("ERR Unrecognized option '" + sanitize(string(req.args[2]), 64) + "'")
			return
		}
		c.wr.ok()
	},
	"id": func(c *conn, req *request) { c.wr.int(c.id) },
	"info": func(c *conn, req *request) {
		c.wr.verbatim(c.describe())
	},
	"list": func(c *conn, req *request) {
		var b strings.Builder
		for _, o := range c.s.clients() {
			b.WriteString(o.describe())
		}
		c.wr.verbatim(b.String())
	},
	"kill":  cmdClientKill,
	"help":  func(c *conn, req *request) { c.wr.bulkStrings(clientHelp) },
	"reply": func(c *conn, req *request) { c.wr.ok() },
}

var clientHelp = []string{
	"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"GETNAME", "    Return the name of the current connection.",
	"ID", "    Return the ID of the current connection.",
	"INFO", "    Return information about the current client connection.",
	"KILL <ip:port>", "    Kill connection made from <ip:port>.",
	"KILL <option> <value> [<option> <value> [...]]", "    Kill connections. Options are: ID, ADDR, LADDR, SKIPME.",
	"LIST", "    Return information about client connections.",
	"SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name or version.",
	"SETNAME <name>", "    Assign the name <name> to the current connection.",
}

func clientSubs() []*command {
	subs := []*command{
		{name: "client|setname", arity: 3, summary: "Sets the connection name."},
		{name: "client|getname", arity: 2, summary: "Returns the name of the connection."},
		{name: "client|setinfo", arity: 4, summary: "Sets information specific to the client or connection."},
		{name: "client|id", arity: 2, summary: "Returns the unique client ID of the connection."},
		{name: "client|info", arity: 2, summary: "Returns information about the connection."},
		{name: "client|list", arity: 2, summary: "Lists open connections."},
		{name: "client|kill", arity: -3, summary: "Terminates open connections."},
		{name: "client|help", arity: 2, summary: "Returns helpful text about the different subcommands."},
	}
	for _, s := range subs {
		s.group, s.since, s.flags = "connection", "2.4.0", flagNoScript
	}
	return subs
}

func cmdClient(c *conn, req *request) { subcommand(c, req, "client", clientHandlers) }

// describe is the client's line in CLIENT LIST, in Redis's format.
func (c *conn) describe() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	lastCmd := ""
	if cmd := c.lastCmd.Load(); cmd != nil {
		lastCmd = cmd.name
	}
	laddr := ""
	if a := c.nc.LocalAddr(); a != nil {
		laddr = a.String()
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=%d flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=%d qbuf-free=0 argv-mem=0 multi-mem=0 rbs=%d rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=default redir=-1 resp=%d lib-name=%s lib-ver=%s\n",
		c.id, c.nc.RemoteAddr().String(), laddr, c.name,
		int64(now.Sub(c.start)/time.Second), (now.UnixNano()-c.lastUsed.Load())/int64(time.Second),
		0, readBufferSize, lastCmd, c.proto, c.libName, c.libVer)
}

// killOther closes o; a client killing itself gets its answer first.
func (c *conn) killOther(o *conn) {
	if o == c {
		c.closeAfter = true
		return
	}
	o.kill()
}

// cmdClientKill is CLIENT KILL addr and CLIENT KILL [ID id] [ADDR addr]
// [LADDR addr] [SKIPME yes|no].
func cmdClientKill(c *conn, req *request) {
	args := req.args[2:]
	if len(args) == 1 {
		for _, o := range c.s.clients() {
			if o.nc.RemoteAddr().String() == string(args[0]) {
				c.killOther(o)
				c.wr.ok()
				return
			}
		}
		c.wr.error("ERR No such client")
		return
	}
	if len(args)%2 != 0 {
		c.wr.error(errSyntax)
		return
	}
	var id int64 = -1
	addr, laddr, skipme := "", "", true
	for i := 0; i < len(args); i += 2 {
		v := string(args[i+1])
		switch strings.ToLower(string(args[i])) {
		case "id":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				c.wr.error("ERR client-id should be greater than 0")
				return
			}
			id = n
		case "addr":
			addr = v
		case "laddr":
			laddr = v
		case "skipme":
			switch strings.ToLower(v) {
			case "yes":
				skipme = true
			case "no":
				skipme = false
			default:
				c.wr.error(errSyntax)
				return
			}
		default:
			c.wr.error(errSyntax)
			return
		}
	}
	var n int64
	for _, o := range c.s.clients() {
		if (id > 0 && o.id != id) || (addr != "" && o.nc.RemoteAddr().String() != addr) ||
			(laddr != "" && o.nc.LocalAddr().String() != laddr) || (skipme && o == c) {
			continue
		}
		c.killOther(o)
		n++
	}
	c.wr.int(n)
}
