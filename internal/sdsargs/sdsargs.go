// Package sdsargs splits and quotes argument lines exactly as Redis's
// sdssplitargs and sdscatrepr do. redis.conf lines, kvresp's command line and
// inline requests typed into a RESP connection all go through it, so a value
// is quoted the same way wherever a person writes it.
package sdsargs

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of Split; Redis's inline parser reports both as "unbalanced quotes".
var (
	ErrUnbalanced = errors.New("unbalanced quotes")
	ErrAfterQuote = errors.New("closing quote must be followed by a space or nothing")
)

// Split splits a line into arguments exactly like Redis's sdssplitargs:
// blanks separate arguments; "double quotes" take \n \r \t \b \a \xHH and
// \<any char> escapes; 'single quotes' take only \'; a quote may open in the
// middle of an argument but a closing quote must end it.
func Split(line string) ([]string, error) {
	args := []string{}
	p, n := 0, len(line)
	for {
		for p < n && isSpace(line[p]) {
			p++
		}
		if p == n {
			return args, nil
		}
		cur := []byte{}
		inq, insq, done := false, false, false
		for !done {
			switch {
			case inq:
				switch {
				case p == n:
					return nil, ErrUnbalanced
				case line[p] == '\\' && p+3 < n && line[p+1] == 'x' && isHex(line[p+2]) && isHex(line[p+3]):
					cur = append(cur, unhex(line[p+2])<<4|unhex(line[p+3]))
					p += 3
				case line[p] == '\\' && p+1 < n:
					p++
					cur = append(cur, unescape(line[p]))
				case line[p] == '"':
					if p+1 < n && !isSpace(line[p+1]) {
						return nil, ErrAfterQuote
					}
					done = true
				default:
					cur = append(cur, line[p])
				}
			case insq:
				switch {
				case p == n:
					return nil, ErrUnbalanced
				case line[p] == '\\' && p+1 < n && line[p+1] == '\'':
					p++
					cur = append(cur, '\'')
				case line[p] == '\'':
					if p+1 < n && !isSpace(line[p+1]) {
						return nil, ErrAfterQuote
					}
					done = true
				default:
					cur = append(cur, line[p])
				}
			case p == n:
				done = true
			default:
				switch line[p] {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					cur = append(cur, line[p])
				}
			}
			if p < n {
				p++
			}
		}
		args = append(args, string(cur))
	}
}

// isSpace is C's isspace in the "C" locale.
func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r'
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

func unhex(b byte) byte {
	switch {
	case b <= '9':
		return b - '0'
	case b <= 'F':
		return b - 'A' + 10
	}
	return b - 'a' + 10
}

func unescape(b byte) byte {
	switch b {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return b
}

// Quote quotes s like Redis's sdscatrepr, so that Split reads it back
// as one argument: "double quotes", with \\ \" \n \r \t \a \b escapes and \xHH
// for other bytes outside printable ASCII.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		default:
			if c >= 0x20 && c < 0x7f {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
