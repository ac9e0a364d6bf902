package centrifugo

import (
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
)

// A connection gets one connect. After a connect answered with an error
// (109, 110) the connection is spent, as in Centrifugo: whatever comes
// next, a second connect with a good token or a pong included, closes 3501
// "bad request". centrifuge-js never sends it (it reconnects on a new
// connection), and without the close one connection could try token after
// token until its stale deadline. A connect on a connected connection
// closes 3501 too.
func TestConnectAgain(t *testing.T) {
	n := newTestNode(t, apps.App{})
	good := token(t, map[string]any{"sub": "u1"})
	expired := token(t, map[string]any{"sub": "u1", "exp": start.Add(-time.Second).Unix()})
	pastExpireAt := token(t, map[string]any{"sub": "u1", "expire_at": start.Add(-time.Minute).Unix()})
	tests := []struct {
		name  string
		first string
		then  string
	}{
		{"connect after 109", expired, `{"id":2,"connect":{"token":"` + good + `"}}`},
		{"connect after 110", pastExpireAt, `{"id":2,"connect":{"token":"` + good + `"}}`},
		{"expired connect after 109", expired, `{"id":2,"connect":{"token":"` + expired + `"}}`},
		{"pong after 109", expired, `{}`},
		{"subscribe after 109", expired, `{"id":2,"subscribe":{"channel":"news"}}`},
		{"send after 109", expired, `{"send":{"data":{}}}`},
		{"connect after connect", good, `{"id":2,"connect":{"token":"` + good + `"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := n.dial(t)
			tc.cmd(1, "connect", map[string]any{"token": tt.first})
			if r := tc.replies(); len(r) != 1 {
				t.Fatalf("first connect: %v", r)
			}
			tc.expectOpen()
			tc.HandleMessage([]byte(tt.then))
			tc.expect()
			tc.expectClosed(CloseBadRequest, "bad request")
		})
	}
}

// The close after a failed connect is decided on the loop: a second
// connect's public-key token is not checked first, or a spent connection
// could make the node verify signatures for nothing.
func TestConnectAgainChecksNoToken(t *testing.T) {
	key, path := p256KeyFile(t)
	n := newTestNode(t, apps.App{JWTPublicKey: path})
	tc := n.dial(t)
	tc.cmd(1, "connect", map[string]any{"token": esToken(t, key, map[string]any{"sub": "u1", "exp": start.Add(-time.Second).Unix()})})
	tc.expect(`{"error":{"code":109,"message":"token expired"},"id":1}`)
	tc.cmd(2, "connect", map[string]any{"token": esToken(t, key, map[string]any{"sub": "u1"})})
	// Closed by HandleMessage itself, not by work queued off the loop.
	tc.expectClosed(CloseBadRequest, "bad request")
	tc.expect()
}
