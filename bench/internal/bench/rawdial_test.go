package bench

import (
	"strings"
	"testing"
)

func TestAcceptForRFCExample(t *testing.T) {
	// RFC 6455, section 1.3.
	if got := acceptFor("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept %q", got)
	}
	k1, a1 := newNonce()
	k2, _ := newNonce()
	if len(k1) != 24 || k1 == k2 || a1 != acceptFor(k1) {
		t.Fatalf("nonces %q %q, accept %q", k1, k2, a1)
	}
}

func TestCheckUpgradeResponse(t *testing.T) {
	const accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
	ok := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n"
	if err := checkUpgradeResponse([]byte(ok), accept); err != nil {
		t.Fatalf("valid response refused: %v", err)
	}
	lower := "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-accept:" + accept + "\r\n\r\n"
	if err := checkUpgradeResponse([]byte(lower), accept); err != nil {
		t.Fatalf("valid response in other case refused: %v", err)
	}
	for name, tc := range map[string]struct{ head, want string }{
		"refused":       {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "upgrade refused: HTTP/1.1 404 Not Found"},
		"no upgrade":    {strings.Replace(ok, "Upgrade: websocket\r\n", "", 1), "without Upgrade"},
		"no connection": {strings.Replace(ok, "Connection: Upgrade", "Connection: close", 1), "without Connection"},
		"wrong accept":  {strings.Replace(ok, accept, "AAAA"+accept[4:], 1), "wrong Sec-WebSocket-Accept"},
		"malformed":     {strings.Replace(ok, "Upgrade: websocket", "Upgrade websocket", 1), "malformed"},
	} {
		err := checkUpgradeResponse([]byte(tc.head), accept)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
}

// The response head may come in any pieces; what follows it is returned
// once it is complete.
func TestDialStateResponseInPieces(t *testing.T) {
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptFor(key) + "\r\n\r\n"
	stream := head + "\x81\x05hello"
	for cut := 1; cut < len(stream); cut++ {
		d := &dialState{accept: acceptFor(key)}
		first, err := d.response([]byte(stream[:cut]))
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if cut < len(head) {
			if d.upgraded || len(first) != 0 {
				t.Fatalf("cut %d: upgraded before the head was complete", cut)
			}
			rest, err := d.response([]byte(stream[cut:]))
			if err != nil || !d.upgraded || string(rest) != "\x81\x05hello" {
				t.Fatalf("cut %d: rest %q, %v", cut, rest, err)
			}
			continue
		}
		if !d.upgraded || string(first) != stream[len(head):cut] {
			t.Fatalf("cut %d: first %q", cut, first)
		}
	}
	d := &dialState{accept: "x"}
	if _, err := d.response([]byte("HTTP/1.1 101 OK\r\n" + strings.Repeat("X-Pad: y\r\n", 1000))); err == nil {
		t.Fatal("an endless response head was accepted")
	}
}
