package pusher

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/channel"
	"github.com/heraldhq/herald/internal/hub"
)

func errorMessage(t *testing.T, m sent) string {
	t.Helper()
	var d struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d.Message
}

// expectSigninRefused checks that the one message sent is a sign-in
// refusal, pusher:error 4009 with msg.
func (tc *testConn) expectSigninRefused(msg string) {
	tc.t.Helper()
	got := tc.expect("pusher:error")
	if code, m := errorCode(tc.t, got[0]), errorMessage(tc.t, got[0]); code != int(CodeUnauthorized) || m != msg {
		tc.t.Fatalf("refusal %d %q, want 4009 %q", code, m, msg)
	}
}

// A connection is signed in once, as the user of its first valid
// pusher:signin. A second one sent while the first still waits for the
// cluster (its pusher:signin_success not sent yet) is refused, whatever
// user it names: it can neither be answered before the first nor change
// the user the first made the connection. The first is answered once its
// wait is over, and nothing of the second is held.
func TestSigninWhileSigninPending(t *testing.T) {
	b := &slowInterest{Memory: broker.NewMemory(0), ready: map[string]bool{}, release: make(chan struct{})}
	n := newTestNodeOn(t, apps.App{}, b)
	c := n.connect(t)
	c.signin(`{"id":"alice"}`)
	time.Sleep(20 * time.Millisecond)
	if got := take(t, c.c); len(got) != 0 {
		t.Fatalf("sent %v before the user's channel took effect on the cluster", events(got))
	}
	c.signin(`{"id":"alice"}`)
	if got := take(t, c.c); len(got) != 1 || got[0].Event != "pusher:error" ||
		errorMessage(t, got[0]) != MsgSigninInProgress || errorCode(t, got[0]) != int(CodeUnauthorized) {
		t.Fatalf("second sign-in as the same user: sent %s, want one pusher:error 4009 %q", dump(got), MsgSigninInProgress)
	}
	c.signin(`{"id":"mallory"}`)
	if got := take(t, c.c); len(got) != 1 || got[0].Event != "pusher:error" || errorCode(t, got[0]) != int(CodeUnauthorized) {
		t.Fatalf("second sign-in as another user: sent %s, want one pusher:error 4009", dump(got))
	}
	close(b.release)
	got := c.expect("pusher:signin_success")
	var d struct {
		UserData string `json:"user_data"`
	}
	if err := json.Unmarshal(got[0].Data, &d); err != nil || d.UserData != `{"id":"alice"}` {
		t.Fatalf("signin_success %s, want the first sign-in's user_data", got[0].Data)
	}
	c.mu.Lock()
	u := c.signedIn()
	_, own := c.subs.get(channel.ServerToUserPrefix + "alice")
	_, other := c.subs.get(channel.ServerToUserPrefix + "mallory")
	c.mu.Unlock()
	if u == nil || u.ID != "alice" || !own || other {
		t.Fatalf("signed in as %+v, own channel %v, mallory's %v", u, own, other)
	}
	// Sent to mallory, nothing reaches the connection.
	for _, user := range []string{"mallory", "alice"} {
		if err := n.hub.Publish(t.Context(), broker.Message{AppID: "1", Channel: channel.ServerToUserPrefix + user, Event: "to-" + user, Data: "x"}, hub.SourceREST); err != nil {
			t.Fatal(err)
		}
	}
	c.expect("to-alice")
}

// Once the sign-in is answered, the same pusher:signin again is answered
// pusher:signin_success again; one for another user, or for the same user
// with other user_data (user_info and watchlist are the first sign-in's
// for the connection's life, and pusher-js would take the new user_data
// for what the server holds), is refused.
func TestSigninAgain(t *testing.T) {
	n := newTestNode(t, apps.App{})
	c := n.connect(t)
	c.signin(`{"id":"alice","user_info":{"name":"A"}}`)
	c.expect("pusher:signin_success")
	c.signin(`{"id":"alice","user_info":{"name":"A"}}`)
	c.expect("pusher:signin_success")
	c.signin(`{"id":"alice","user_info":{"name":"Admin"}}`)
	c.expectSigninRefused(MsgSigninOtherUserData)
	c.signin(`{"id":"bob"}`)
	c.expectSigninRefused(MsgSigninOtherUser)
}

// A sign-in whose own channel the client leaves before the cluster
// confirmed it is still answered: pusher-js waits for its
// pusher:signin_success, and the connection is signed in.
func TestSigninAnsweredWhenOwnChannelLeftWhilePending(t *testing.T) {
	b := &slowInterest{Memory: broker.NewMemory(0), ready: map[string]bool{}, release: make(chan struct{})}
	n := newTestNodeOn(t, apps.App{}, b)
	c := n.connect(t)
	c.signin(`{"id":"alice"}`)
	c.sendJSON(map[string]any{"event": "pusher:unsubscribe", "data": map[string]string{"channel": channel.ServerToUserPrefix + "alice"}})
	close(b.release)
	c.expect("pusher:signin_success")
	c.signin(`{"id":"alice"}`)
	c.expect("pusher:signin_success")
}
