package resp

// globMatch reports whether s matches the Redis glob pattern p (KEYS, SCAN
// MATCH): * and ? wildcards, [abc], [^a-z] classes and \ escapes, as Redis's
// stringmatchlen does. Matching is iterative with one backtrack point, so a
// hostile pattern costs O(len(p)*len(s)) at worst.
func globMatch(p, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, -1
	for sx < len(s) {
		if px < len(p) {
			switch p[px] {
			case '*':
				for px < len(p) && p[px] == '*' {
					px++
				}
				if px == len(p) {
					return true
				}
				starP, starS = px, sx
				continue
			case '?':
				px++
				sx++
				continue
			case '[':
				if n, ok := matchClass(p[px:], s[sx]); n > 0 {
					if ok {
						px += n
						sx++
						continue
					}
					break
				}
				if p[px] == s[sx] {
					px++
					sx++
					continue
				}
			case '\\':
				if px+1 < len(p) {
					if p[px+1] == s[sx] {
						px += 2
						sx++
						continue
					}
					break
				}
				if s[sx] == '\\' {
					px++
					sx++
					continue
				}
			default:
				if p[px] == s[sx] {
					px++
					sx++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		px, sx = starP, starS
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}

// matchClass matches c against the class at the start of p ("[...]"). It
// returns the class's length in p (0 if p does not start a class) and
// whether c is in it. An unterminated class runs to the end of p, as in Redis.
func matchClass(p string, c byte) (int, bool) {
	i := 1
	not := false
	if i < len(p) && p[i] == '^' {
		not = true
		i++
	}
	match := false
	for i < len(p) && p[i] != ']' {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			i++
			if p[i] == c {
				match = true
			}
		case i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']':
			lo, hi := p[i], p[i+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			if c >= lo && c <= hi {
				match = true
			}
			i += 2
		default:
			if p[i] == c {
				match = true
			}
		}
		i++
	}
	if i < len(p) {
		i++ // the closing ]
	}
	return i, match != not
}
