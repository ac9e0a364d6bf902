package pusher

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
)

// publicKeyNode is a node whose app accepts subscription JWTs signed with
// the app secret or with an ES512 key, over a broker whose cluster interest
// waits for release, which holds the connection's off-loop work. The
// channels in ready need no wait.
func publicKeyNode(t *testing.T, ready ...string) (*testNode, *slowInterest, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &slowInterest{Memory: broker.NewMemory(0), ready: map[string]bool{}, release: make(chan struct{})}
	for _, ch := range ready {
		b.ready[ch] = true
	}
	n := newTestNodeOn(t, apps.App{PusherJWTAuth: true, JWTPublicKey: path, MaxSubscriptionsPerConnection: 1000}, b)
	return n, b, key
}

// esJWT is a subscription token signed with key, ES512.
func esJWT(t *testing.T, key *ecdsa.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodES512, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A subscription JWT whose check takes a public-key signature (about 2 ms
// for ES512) is checked off the transport's loop, which serves many other
// connections: the subscribe waits, and so do the messages sent after it,
// and all are answered in order, as they would have been on the loop.
// HMAC auth, JWT or key:signature, is still checked at once.
func TestPublicKeyJWTsAreCheckedOffTheLoop(t *testing.T) {
	n, b, key := publicKeyNode(t, "private-j0", "private-x", "private-y", "private-h", "private-j")
	other, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := n.connect(t)
	// A subscription waiting for the cluster keeps the connection's
	// off-loop work busy, so that what waits for it can be seen waiting.
	c.subscribe("news", "")
	c.subscribeAuth("private-j0", channelJWT(t, jwt.MapClaims{"channel": "private-j0", "client": c.socketID()}))
	if got := take(t, c.c); len(got) != 1 || got[0].Event != "pusher_internal:subscription_succeeded" || got[0].Channel != "private-j0" {
		t.Fatalf("HS256 JWT subscribe answered %s, want its success at once, on the loop", dump(got))
	}
	c.subscribeAuth("private-x", esJWT(t, key, jwt.MapClaims{"channel": "private-x", "client": c.socketID()}))
	c.subscribeAuth("private-y", esJWT(t, other, jwt.MapClaims{"channel": "private-y", "client": c.socketID()}))
	c.subscribe("private-h", "")
	c.subscribeAuth("private-j", channelJWT(t, jwt.MapClaims{"channel": "private-j", "client": c.socketID()}))
	c.HandleMessage([]byte(`{"event":"pusher:ping","data":{}}`))
	time.Sleep(20 * time.Millisecond)
	if got := take(t, c.c); len(got) != 0 {
		t.Fatalf("answered while the cluster held the connection's work: %s", dump(got))
	}
	close(b.release)
	got := c.expect("pusher_internal:subscription_succeeded", "pusher_internal:subscription_succeeded",
		"pusher:subscription_error", "pusher:error",
		"pusher_internal:subscription_succeeded", "pusher_internal:subscription_succeeded", "pusher:pong")
	var chans []string
	for _, m := range got[:6] {
		chans = append(chans, m.Channel)
	}
	if want := "news private-x private-y private-y private-h private-j"; strings.Join(chans, " ") != want {
		t.Fatalf("answered %v, want %s", chans, want)
	}
	// Forged: refused as an HS256 token with a bad signature is.
	var e subError
	if err := json.Unmarshal(got[2].Data, &e); err != nil {
		t.Fatal(err)
	}
	if e.Type != errTypeAuth || e.Status != 401 || e.Error != "Invalid subscription token: bad signature or claims" || errorCode(t, got[3]) != int(CodeUnauthorized) {
		t.Fatalf("forged ES512 token refused with %s", dump(got[2:4]))
	}

	// Validly signed, but not for this subscribe; expired; presence.
	c.subscribeAuth("private-z", esJWT(t, key, jwt.MapClaims{"channel": "private-x", "client": c.socketID()}))
	c.expectAuthRefused("private-z", "another channel")
	c.subscribeAuth("private-z", esJWT(t, key, jwt.MapClaims{"channel": "private-z", "client": c.socketID(), "exp": time.Now().Add(-time.Second).Unix()}))
	c.expectAuthRefused("private-z", "expired")
	c.subscribeAuth("presence-p", esJWT(t, key, jwt.MapClaims{"channel": "presence-p", "client": c.socketID()}))
	c.expectAuthRefused("presence-p", "needs a sub")
	c.subscribeAuth("presence-p", esJWT(t, key, jwt.MapClaims{"channel": "presence-p", "client": c.socketID(), "sub": "u1", "info": map[string]string{"name": "Ann"}}))
	got = c.expect("pusher_internal:subscription_succeeded")
	if got[0].Channel != "presence-p" || !strings.Contains(string(got[0].Data), "Ann") {
		t.Fatalf("presence join %s", dump(got))
	}
	if code, _, _ := c.c.Closed(); code != 0 {
		t.Fatalf("closed %d", code)
	}
}

// What a client sends while one of its subscription JWTs is checked off
// the loop is held up to maxHeldBytes; more closes 4100, and nothing of
// the connection is handled afterwards.
func TestHeldWhileCheckingIsBounded(t *testing.T) {
	n, b, key := publicKeyNode(t, "private-x")
	c := n.connect(t)
	c.subscribe("news", "")
	c.subscribeAuth("private-x", esJWT(t, key, jwt.MapClaims{"channel": "private-x", "client": c.socketID()}))
	ping := []byte(`{"event":"pusher:ping","data":{}}`)
	ping = append(ping, strings.Repeat(" ", 64<<10-len(ping))...)
	for range maxHeldBytes / (len(ping) + heldOverhead) {
		c.HandleMessage(ping)
	}
	if code, _, _ := c.c.Closed(); code != 0 {
		t.Fatalf("closed %d holding %d bytes", code, maxHeldBytes/(len(ping)+heldOverhead)*len(ping))
	}
	c.HandleMessage(ping)
	code, reason, aborted := c.c.Closed()
	if code != int(CodeOverCapacity) || reason != MsgHeldTooMuch || aborted {
		t.Fatalf("closed %d %q (aborted %v), want 4100 %q", code, reason, aborted, MsgHeldTooMuch)
	}
	if r := c.reason.Load(); r != uint32(hub.ReasonProtocolError)+1 {
		t.Fatalf("close reason %d, want protocol error", r)
	}
	got := take(t, c.c)
	if len(got) != 1 || got[0].Event != "pusher:error" || errorCode(t, got[0]) != int(CodeOverCapacity) {
		t.Fatalf("sent %s, want pusher:error 4100", dump(got))
	}
	c.HandleMessage([]byte(`{"event":"pusher:ping","data":{}}`))
	close(b.release)
	c.expect()
}

// A public-key JWT check is work the client asked for: with the
// connection's off-loop work at its bound the subscribe is refused at
// once, as any other would be, and the connection does not wait.
func TestPublicKeyJWTCheckBounded(t *testing.T) {
	n, b, key := publicKeyNode(t, "private-x")
	c := n.connect(t)
	// The first waits for the cluster, out of the queue, which the others
	// then fill.
	for i := range hub.MaxPendingOps + 1 {
		c.HandleMessage(fmt.Appendf(nil, `{"event":"pusher:subscribe","data":{"channel":"cache-%d"}}`, i))
		if i == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	take(t, c.c)
	c.subscribeAuth("private-x", esJWT(t, key, jwt.MapClaims{"channel": "private-x", "client": c.socketID()}))
	c.HandleMessage([]byte(`{"event":"pusher:ping","data":{}}`))
	got := take(t, c.c)
	if len(got) != 3 || got[0].Event != "pusher:subscription_error" || got[0].Channel != "private-x" || got[2].Event != "pusher:pong" {
		t.Fatalf("sent %s, want the subscribe refused and the ping answered at once", dump(got))
	}
	var e subError
	if err := json.Unmarshal(got[0].Data, &e); err != nil {
		t.Fatal(err)
	}
	if e.Type != errTypeLimit || e.Status != 429 {
		t.Fatalf("refused with %s, want %s 429", got[0].Data, errTypeLimit)
	}
	close(b.release)
	// The queue drains off the loop: a subscribe sent before it has would
	// be refused again.
	if err := n.hub.WaitOps(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.subscribeAuth("private-x", esJWT(t, key, jwt.MapClaims{"channel": "private-x", "client": c.socketID()}))
	if err := n.hub.WaitOps(t.Context()); err != nil {
		t.Fatal(err)
	}
	got = take(t, c.c)
	if last := got[len(got)-1]; last.Event != "pusher_internal:subscription_succeeded" || last.Channel != "private-x" {
		t.Fatalf("last answer %s, want private-x's success", dump(got[len(got)-1:]))
	}
}

// Messages sent while held ones are being handled off the loop keep their
// place: every answer comes in the order of the messages.
func TestOrderKeptWhileChecking(t *testing.T) {
	var ready []string
	for i := range 30 {
		ready = append(ready, fmt.Sprintf("private-%d", i))
	}
	n, b, key := publicKeyNode(t, ready...)
	close(b.release)
	c := n.connect(t)
	var want []string
	for i := range 30 {
		name := fmt.Sprintf("private-%d", i)
		switch i % 5 {
		case 0, 3:
			c.subscribeAuth(name, esJWT(t, key, jwt.MapClaims{"channel": name, "client": c.socketID()}))
			want = append(want, "pusher_internal:subscription_succeeded "+name)
		case 1:
			c.subscribe(name, "")
			want = append(want, "pusher_internal:subscription_succeeded "+name)
		case 2:
			c.HandleMessage([]byte(`{"event":"pusher:ping","data":{}}`))
			want = append(want, "pusher:pong ")
		case 4:
			c.HandleMessage([]byte(`not JSON`))
			want = append(want, "pusher:error ")
		}
	}
	if err := n.hub.WaitOps(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range take(t, c.c) {
		got = append(got, m.Event+" "+m.Channel)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("answered\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Each held message counts against maxHeldBytes with what holding it
// costs beyond its bytes: empty messages, sent as fast as the client can,
// are bounded too.
func TestHeldEmptyMessagesAreBounded(t *testing.T) {
	n, b, key := publicKeyNode(t, "private-x")
	defer close(b.release)
	c := n.connect(t)
	c.subscribe("news", "")
	c.subscribeAuth("private-x", esJWT(t, key, jwt.MapClaims{"channel": "private-x", "client": c.socketID()}))
	for range maxHeldBytes/heldOverhead + 1 {
		c.HandleMessage(nil)
	}
	if code, reason, _ := c.c.Closed(); code != int(CodeOverCapacity) || reason != MsgHeldTooMuch {
		t.Fatalf("closed %d %q holding %d empty messages, want 4100 %q", code, reason, len(c.rare.held), MsgHeldTooMuch)
	}
}
