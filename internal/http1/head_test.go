package http1

import (
	"strings"
	"testing"
)

const publish = "POST /apps/1/events?auth_key=k&body_md5=x HTTP/1.1\r\n" +
	"Host: 127.0.0.1:6001\r\n" +
	"Content-Type: application/json\r\n" +
	"Content-Length: 12\r\n" +
	"\r\n"

func TestParseAcceptsAPublish(t *testing.T) {
	var h Head
	if r := Parse([]byte(publish+`{"name":"x"}`), &h); r != Complete {
		t.Fatalf("Parse = %v, want Complete", r)
	}
	if string(h.Method) != "POST" || string(h.Path) != "/apps/1/events" || string(h.Query) != "auth_key=k&body_md5=x" ||
		string(h.Host) != "127.0.0.1:6001" || h.ContentLength != 12 || h.Close || h.Len != len(publish) {
		t.Errorf("Parse read %+v", h)
	}
}

func TestParseIncompleteAtEveryCut(t *testing.T) {
	var h Head
	for n := range len(publish) {
		if r := Parse([]byte(publish[:n]), &h); r != Incomplete {
			t.Errorf("Parse of the first %d bytes = %v, want Incomplete", n, r)
		}
	}
}

func TestParseFields(t *testing.T) {
	var h Head
	r := Parse([]byte("POST /a HTTP/1.1\r\nhost: h\r\nCONNECTION: Close\r\ncontent-length:  007 \r\n\r\n"), &h)
	if r != Complete || !h.Close || h.ContentLength != 7 || h.Query != nil || string(h.Host) != "h" {
		t.Errorf("Parse = %v, %+v", r, h)
	}
	r = Parse([]byte("POST /a? HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"), &h)
	if r != Complete || h.Close || h.ContentLength != 0 || h.Query == nil || len(h.Query) != 0 {
		t.Errorf("Parse = %v, %+v", r, h)
	}
}

// TestParseDeclines lists heads net/http reads in some way the fast path
// does not follow, or refuses: each must go to net/http.
func TestParseDeclines(t *testing.T) {
	const host = "Host: h\r\n"
	for _, head := range []string{
		"POST /a HTTP/1.1\r\n\r\n", // no Host
		"POST /a HTTP/1.1\r\n" + host + host + "\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Content-Length: 1, 1\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Content-Length: +1\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Content-Length: \r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Content-Length: 1234567890123456789\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Content-Length : 1\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Expect: 100-continue\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Connection: upgrade\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Connection: close\r\nConnection: close\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "Upgrade: h2c\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n", // obsolete folding
		"POST /a HTTP/1.1\r\n" + host + "X: \x01\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "X: \xff\r\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "X: a\rb\r\n\r\n",
		"POST /a HTTP/1.1\n" + host + "\r\n",
		"POST /a HTTP/1.1\r\n" + "Host: h\n\r\n",
		"POST /a HTTP/1.1\r\n" + host + "\n",
		"POST /a HTTP/1.1\r\n" + host + "\r\r",
		"POST /a HTTP/1.0\r\n" + host + "\r\n",
		"POST /a http/1.1\r\n" + host + "\r\n",
		"POST  /a HTTP/1.1\r\n" + host + "\r\n",
		"POST /a  HTTP/1.1\r\n" + host + "\r\n",
		"POST a HTTP/1.1\r\n" + host + "\r\n",
		"POST http://h/a HTTP/1.1\r\n" + host + "\r\n",
		"POST /a%2F HTTP/1.1\r\n" + host + "\r\n",
		"POST /a\x7f HTTP/1.1\r\n" + host + "\r\n",
		"POST /a?\x01 HTTP/1.1\r\n" + host + "\r\n",
		"POST /a?\x80 HTTP/1.1\r\n" + host + "\r\n",
		" POST /a HTTP/1.1\r\n" + host + "\r\n",
		"\r\nPOST /a HTTP/1.1\r\n" + host + "\r\n",
		"POST /a HTTP/1.1\r\nHost: a b\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a/b\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost:\r\n\r\n",
	} {
		var h Head
		if r := Parse([]byte(head), &h); r != Declined {
			t.Errorf("Parse(%q) = %v, want Declined", head, r)
		}
	}
}

func TestSkipCRLF(t *testing.T) {
	for _, c := range []struct {
		in      string
		skipped int
		n       int
		more    bool
	}{
		{"", 0, 0, true},
		{"\r\n", 0, 2, true},
		{"\r\nP", 0, 2, false},
		{"\r\n\r\n\r\n", 0, 4, false},
		{"\n", 3, 1, false},
		{"\r", 4, 0, false},
		{"POST", 0, 0, false},
	} {
		n, more := SkipCRLF([]byte(c.in), c.skipped)
		if n != c.n || more != c.more {
			t.Errorf("SkipCRLF(%q, %d) = %d, %v; want %d, %v", c.in, c.skipped, n, more, c.n, c.more)
		}
	}
}

// FuzzParse holds Parse to its own promises on any input: Complete only
// for a head that ends within the buffer, with every slice inside it, and
// a Complete or Declined answer that does not change with more bytes.
func FuzzParse(f *testing.F) {
	f.Add([]byte(publish))
	f.Add([]byte("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Head
		r := Parse(b, &h)
		switch r {
		case Complete:
			if h.Len < 4 || h.Len > len(b) || string(b[h.Len-4:h.Len]) != "\r\n\r\n" {
				t.Fatalf("Complete with Len %d of %d bytes", h.Len, len(b))
			}
			if strings.Contains(string(b[:h.Len-2]), "\r\n\r\n") {
				t.Fatalf("the head ends before Len %d", h.Len)
			}
			var again Head
			if Parse(append(b[:h.Len:h.Len], "more"...), &again) != Complete || again.Len != h.Len {
				t.Fatal("a complete head reads otherwise with more bytes")
			}
		case Declined:
			var again Head
			if Parse(append(b[:len(b):len(b)], "\r\n\r\n"...), &again) != Declined {
				t.Fatal("a declined head is accepted with more bytes")
			}
		case Incomplete:
		default:
			t.Fatalf("Parse = %v", r)
		}
	})
}
