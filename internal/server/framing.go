package server

import (
	"bytes"

	"github.com/heraldhq/herald/internal/http1"
)

// framing follows the requests net/http reads from a connection just far
// enough to see each head whole. net/http serves a request that declares
// both Content-Length and Transfer-Encoding by the latter and keeps the
// connection for the next request; a proxy in front of Herald that framed
// the same bytes by Content-Length would disagree on where that next
// request starts (request smuggling), which is why RFC 9112 section 6.1
// requires the connection closed. net/http drops the Content-Length before
// a handler could see it, so the check is made on the bytes: such a head
// is never handed over whole; refusedHead ends it instead, and net/http
// answers 400 and closes.
//
// Bodies framed by Content-Length are skipped by counting. Anything framing
// cannot follow exactly as net/http does (a chunked body, an obsolete line
// folding, a Content-Length it cannot read) makes it lost: it stops looking,
// and the connection is closed after its current request rather than
// trusted with another.
type framing struct {
	state    uint8
	bodyLeft int64 // in framingBody

	// The head being read.
	lines      int                    // lines ended so far
	line       [framingLineBytes]byte // the start of the current line
	lineBytes  int                    // length of the current line so far
	last       byte                   // its last byte
	sawCL      bool
	sawTE      bool
	clBad      bool // a Content-Length net/http might read otherwise
	folded     bool // an obsolete line folding
	contentLen int64
	post       bool // the head is a POST's
	// skipCRLF is how many leading CR or LF bytes net/http will skip
	// before the next request line: up to 4 after a POST, a tolerance for
	// old clients that end a POST body with CRLF.
	skipCRLF int
}

const (
	framingHead = iota
	framingBody
	framingLost
)

// framingLineBytes is how much of a header line framing keeps: enough for
// the name and a Content-Length value. A longer Content-Length line makes
// it lost.
const framingLineBytes = 48

func (f *framing) lost() bool { return f.state == framingLost }

// scan follows p, the next bytes read from the connection. When p ends a
// head that declares both Content-Length and Transfer-Encoding, bad is
// true and n is how much of p may be handed on: all but that head's final
// empty line, which net/http then never sees.
func (f *framing) scan(p []byte) (n int, bad bool) {
	for i := 0; i < len(p); {
		switch f.state {
		case framingLost:
			return len(p), false
		case framingBody:
			k := int(min(f.bodyLeft, int64(len(p)-i)))
			i += k
			if f.bodyLeft -= int64(k); f.bodyLeft == 0 {
				f.state = framingHead
			}
		case framingHead:
			if f.skipCRLF > 0 {
				if p[i] == '\r' || p[i] == '\n' {
					f.skipCRLF--
					i++
					continue
				}
				f.skipCRLF = 0
			}
			start := i
			if f.lineBytes > 0 {
				start = 0 // the line began in an earlier read
			}
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				f.keep(p[i:])
				return len(p), false
			}
			f.keep(p[i : i+j])
			i += j + 1
			if !f.endLine() {
				continue
			}
			switch {
			case f.sawCL && f.sawTE:
				return start, true
			case f.sawTE || f.clBad || f.folded:
				f.state = framingLost
			case f.contentLen > 0:
				f.state, f.bodyLeft = framingBody, f.contentLen
			}
			if f.post {
				f.skipCRLF = 4
			}
			f.lines, f.sawCL, f.sawTE, f.clBad, f.folded, f.contentLen, f.post = 0, false, false, false, false, 0, false
		}
	}
	return len(p), false
}

// keep adds b to the current line.
func (f *framing) keep(b []byte) {
	if len(b) == 0 {
		return
	}
	if f.lineBytes < len(f.line) {
		copy(f.line[f.lineBytes:], b)
	}
	f.lineBytes += len(b)
	f.last = b[len(b)-1]
}

// endLine takes in the line just ended and reports whether it was the
// empty line that ends the head.
func (f *framing) endLine() bool {
	n := f.lineBytes
	if n > 0 && f.last == '\r' {
		n-- // a CRLF line end; net/http takes a bare LF too
	}
	kept := f.line[:min(n, len(f.line))]
	f.lineBytes, f.last = 0, 0
	f.lines++
	switch {
	case f.lines == 1:
		// The request line, even empty: net/http refuses that one.
		f.post = bytes.HasPrefix(kept, []byte("POST "))
		return false
	case n == 0:
		return true
	case kept[0] == ' ' || kept[0] == '\t':
		f.folded = true
		return false
	}
	name, value, ok := bytes.Cut(kept, []byte(":"))
	switch {
	case !ok:
		// No colon in what was kept: a name longer than either below, or
		// a line net/http refuses.
	case http1.EqualFold(name, "content-length"):
		v, ok := parseContentLength(value)
		if !ok || n > len(f.line) || f.sawCL && v != f.contentLen {
			f.clBad = true
		}
		f.sawCL, f.contentLen = true, v
	case http1.EqualFold(name, "transfer-encoding"):
		f.sawTE = true
	}
	return false
}

// parseContentLength reads a Content-Length value as net/http does:
// decimal digits between optional spaces and tabs, below 2^63.
func parseContentLength(b []byte) (int64, bool) {
	b = bytes.Trim(b, " \t")
	if len(b) == 0 || len(b) > 18 { // 18 digits always fit
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
