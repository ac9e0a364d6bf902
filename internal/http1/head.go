// Package http1 reads HTTP/1.1 request heads for the REST fast path: a
// strict subset of the syntax that net/http accepts, small enough to check
// exhaustively against it.
//
// The fast path serves keep-alive publishes without net/http's
// per-request objects, buffers and background reads. It may only serve a
// request that net/http would read the same way, with the same body and
// the same boundary to the next request: any disagreement about where a
// request ends is request smuggling. So Parse accepts only the plain form
// SDKs send and declines everything else (a Transfer-Encoding, a repeated
// Content-Length or Host, Expect, an obsolete line folding, a bare LF, a
// byte net/http might read otherwise); a declined head goes to net/http
// as it stands, which answers or refuses it as always. The differential
// fuzz test (FuzzAgainstNetHTTP) holds Parse to that.
package http1

// Result is what Parse made of a buffer.
type Result uint8

const (
	// Incomplete: the buffer holds the start of a head that may yet be
	// accepted; read more.
	Incomplete Result = iota
	// Complete: Head describes the head at the start of the buffer.
	Complete
	// Declined: the head is not one the fast path serves; net/http gets
	// the bytes as they are.
	Declined
)

// Head is a request head Parse accepted. Its slices point into the buffer
// parsed.
type Head struct {
	Method []byte
	Path   []byte // the request target up to '?'
	Query  []byte // after '?', without it; nil if there is none
	Host   []byte
	// ContentLength is the declared body length; 0 without the header, as
	// a request with neither Content-Length nor Transfer-Encoding has no
	// body.
	ContentLength int64
	// Close is set by Connection: close.
	Close bool
	// Len is the length of the head, its final empty line included.
	Len int
}

// maxContentLengthDigits bounds the Content-Length Parse reads: 18 digits
// cannot overflow an int64.
const maxContentLengthDigits = 18

// Parse reads the request head at the start of buf into h.
func Parse(buf []byte, h *Head) Result {
	*h = Head{}
	i, r := requestLine(buf, h)
	if r != Complete {
		return r
	}
	var sawHost, sawLength, sawConnection bool
	for {
		if i+1 >= len(buf) {
			if i < len(buf) && buf[i] != '\r' && !tchar(buf[i]) {
				return Declined
			}
			return Incomplete
		}
		if buf[i] == '\r' {
			if buf[i+1] != '\n' {
				return Declined
			}
			h.Len = i + 2
			if !sawHost {
				return Declined // net/http refuses it: its refusal, then
			}
			return Complete
		}
		name, value, next, r := headerLine(buf, i)
		if r != Complete {
			return r
		}
		i = next
		switch {
		case EqualFold(name, "host"):
			if sawHost || !validHost(value) {
				return Declined
			}
			sawHost, h.Host = true, value
		case EqualFold(name, "content-length"):
			n, ok := contentLength(value)
			if sawLength || !ok {
				return Declined
			}
			sawLength, h.ContentLength = true, n
		case EqualFold(name, "connection"):
			switch {
			case sawConnection:
				return Declined
			case EqualFold(value, "keep-alive"):
			case EqualFold(value, "close"):
				h.Close = true
			default:
				return Declined
			}
			sawConnection = true
		case EqualFold(name, "transfer-encoding"), EqualFold(name, "expect"),
			EqualFold(name, "upgrade"), EqualFold(name, "te"), EqualFold(name, "trailer"):
			// Framing or a response the fast path does not give.
			return Declined
		}
	}
}

// requestLine reads "METHOD SP target SP HTTP/1.1 CRLF" and returns where
// the headers start.
func requestLine(buf []byte, h *Head) (int, Result) {
	i := 0
	for i < len(buf) && tchar(buf[i]) {
		i++
	}
	if i == len(buf) {
		return 0, Incomplete
	}
	if i == 0 || buf[i] != ' ' {
		return 0, Declined
	}
	h.Method = buf[:i]
	i++
	start, query := i, -1
	for ; i < len(buf) && buf[i] != ' '; i++ {
		c := buf[i]
		switch {
		case query >= 0:
			if c < 0x21 || c > 0x7e {
				return 0, Declined
			}
		case c == '?':
			query = i + 1
		case !pathByte(c):
			return 0, Declined
		}
	}
	if i == len(buf) {
		return 0, Incomplete
	}
	if i == start || buf[start] != '/' {
		return 0, Declined
	}
	if query >= 0 {
		h.Path, h.Query = buf[start:query-1], buf[query:i]
	} else {
		h.Path = buf[start:i]
	}
	const proto = " HTTP/1.1\r\n"
	rest := buf[i:]
	if len(rest) < len(proto) {
		if string(rest) != proto[:len(rest)] {
			return 0, Declined
		}
		return 0, Incomplete
	}
	if string(rest[:len(proto)]) != proto {
		return 0, Declined
	}
	return i + len(proto), Complete
}

// headerLine reads "name: value CRLF" at buf[i:] and returns the name, the
// value without surrounding spaces and tabs, and where the next line
// starts.
func headerLine(buf []byte, i int) (name, value []byte, next int, r Result) {
	start := i
	for i < len(buf) && tchar(buf[i]) {
		i++
	}
	if i == len(buf) {
		return nil, nil, 0, Incomplete
	}
	if i == start || buf[i] != ':' {
		return nil, nil, 0, Declined // no name, a space before ':', an obsolete folding
	}
	name = buf[start:i]
	i++
	for ; i < len(buf); i++ {
		c := buf[i]
		if c == '\r' {
			break
		}
		if (c < 0x20 && c != '\t') || c > 0x7e {
			return nil, nil, 0, Declined
		}
	}
	if i+1 >= len(buf) {
		return nil, nil, 0, Incomplete
	}
	if buf[i+1] != '\n' {
		return nil, nil, 0, Declined
	}
	return name, trim(buf[start+len(name)+1 : i]), i + 2, Complete
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// contentLength reads a Content-Length of decimal digits only: no sign, no
// list, nothing net/http could read another way.
func contentLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > maxContentLengthDigits {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validHost accepts a host name or IPv4 address with an optional port, or
// a bracketed IPv6 address: a subset of what net/http takes.
func validHost(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// pathByte is a byte the fast path takes in a request path: unreserved
// characters and '/', which url.ParseRequestURI leaves as they are (no
// escapes, so the path and its raw form are the same).
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '.' || c == '_' || c == '~' || c == '/'
}

// tchar is a token character (RFC 9110 section 5.6.2).
func tchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// EqualFold compares b with lower, which is in lower case, ignoring the
// case of ASCII letters in b: a header name or token as HTTP compares it,
// without the allocation of bytes.EqualFold's Unicode folding.
func EqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// SkipCRLF is how many of the CR and LF bytes at the start of buf net/http
// discards before the request that follows a POST: up to 4, its tolerance
// for old clients that end a body with CRLF. more reports that buf ended
// before 4 bytes were seen, so that more may follow.
func SkipCRLF(buf []byte, skipped int) (n int, more bool) {
	for n < len(buf) && skipped+n < 4 {
		if buf[n] != '\r' && buf[n] != '\n' {
			return n, false
		}
		n++
	}
	return n, skipped+n < 4
}
