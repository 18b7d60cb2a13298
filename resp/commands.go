package resp

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"kvresp/slab"
)

// cmdFlags are a command's properties, as COMMAND reports them.
type cmdFlags uint32

const (
	flagWrite cmdFlags = 1 << iota
	flagReadonly
	flagFast
	flagNoAuth // may run before AUTH
	flagLoading
	flagStale
	flagAdmin
	flagNoScript
)

var flagNames = []struct {
	f    cmdFlags
	name string
}{
	{flagWrite, "write"}, {flagReadonly, "readonly"}, {flagAdmin, "admin"},
	{flagNoScript, "noscript"}, {flagLoading, "loading"}, {flagStale, "stale"},
	{flagFast, "fast"}, {flagNoAuth, "no_auth"},
}

// command is one entry of the command table, which is the single source for
// dispatch, arity checks, COMMAND, COMMAND COUNT/LIST/INFO/DOCS.
type command struct {
	name    string
	arity   int // Redis's convention: n = exactly n, -n = at least n (name included)
	flags   cmdFlags
	first   int // first key position, 0 = no keys
	last    int // last key position, -1 = last argument
	step    int
	group   string
	since   string
	summary string
	fn      func(c *conn, req *request)
	subs    []*command // CLIENT, CONFIG, COMMAND subcommands (for COMMAND output)
}

func (cmd *command) arityOK(n int) bool {
	if cmd.arity >= 0 {
		return n == cmd.arity
	}
	return n >= -cmd.arity
}

func (cmd *command) run(c *conn, req *request) { cmd.fn(c, req) }

var table = map[string]*command{}

// register adds commands to the table; called from the cmd_*.go files' init.
func register(cmds ...*command) {
	for _, cmd := range cmds {
		if _, dup := table[cmd.name]; dup {
			panic("BUG: resp: command registered twice: " + cmd.name)
		}
		table[cmd.name] = cmd
	}
}

func lookup(name string) *command { return table[name] }

// lookupBytes finds a command by its name as sent, in any case, without
// allocating: names are lowered into a stack buffer.
func lookupBytes(name []byte) *command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil // longer than any command name
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return table[string(buf[:len(name)])]
}

// sortedCommands is the table in name order, for COMMAND's stable output.
func sortedCommands() []*command {
	cs := make([]*command, 0, len(table))
	for _, c := range table {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	return cs
}

// Reply texts shared by several commands, Redis's words.
const (
	errSyntax     = "ERR syntax error"
	errNotInt     = "ERR value is not an integer or out of range"
	errExpireTime = "ERR invalid expire time in '%s' command"
)

// oomReply turns an allocation failure into the reply for the command.
func oomReply(err error) string {
	if errors.Is(err, slab.ErrTooLarge) {
		return "ERR value is larger than maxmemory: kvresp cannot hold it in any tier"
	}
	return "OOM command not allowed when used memory > 'maxmemory'."
}

// storeError turns an error from the store into a reply.
func storeError(err error) string {
	if errors.Is(err, slab.ErrTooLarge) || errors.Is(err, slab.ErrNoMemory) {
		return oomReply(err)
	}
	return "ERR " + sanitize(err.Error(), 256)
}

// valueBuf returns argument i as a slab buffer with a reference for the
// caller: the buffer the reader filled for a big bulk, or a new one with a
// copy of a small argument.
func (c *conn) valueBuf(req *request, i int) (*slab.Buf, error) {
	if b := req.bufs[i]; b != nil {
		b.Retain()
		return b, nil
	}
	b, err := c.s.arena.AllocValue(len(req.args[i]))
	if err != nil {
		return nil, err
	}
	copy(b.Bytes(), req.args[i])
	return b, nil
}

// subcommand dispatches "CONTAINER SUB args..." to the sub table, checking
// the subcommand's arity as the command table states it.
func subcommand(c *conn, req *request, parent string, subs map[string]func(c *conn, req *request)) {
	sub := strings.ToLower(string(req.args[1]))
	fn, ok := subs[sub]
	if !ok {
		c.wr.error(fmt.Sprintf("ERR unknown subcommand '%s'. Try %s HELP.", sanitize(string(req.args[1]), 128), strings.ToUpper(parent)))
		return
	}
	name := parent + "|" + sub
	for _, sc := range table[parent].subs {
		if sc.name == name && !sc.arityOK(len(req.args)) {
			c.wrongArgs(name)
			return
		}
	}
	fn(c, req)
}

// wrongArgs is the arity error of a subcommand.
func (c *conn) wrongArgs(name string) {
	c.wr.error("ERR wrong number of arguments for '" + name + "' command")
}
