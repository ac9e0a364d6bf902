package appauth_test

import (
	"testing"

	"github.com/heraldhq/herald/appauth"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/channel"
)

// appauth cannot import Herald's internal packages, so it has its own
// channel-name rule and signing. These fuzz tests keep them Herald's: a
// name the package signs for is one Herald accepts (and the other way
// round, '#server-to-user-' names aside, which only the server uses), and
// every signature verifies with Herald's own verifier.
func FuzzAgreesWithHerald(f *testing.F) {
	for _, s := range []string{"private-a", "presence-r", "-azAZ9_=@,.;", "#server-to-user-u", "a b", "", "private-é"} {
		f.Add(s, "1.2", "u1")
	}
	s, err := appauth.NewSigner("k", "secret", make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, socketID, user string) {
		_, herr := channel.Parse(name, appauth.MaxChannelNameLength)
		aerr := appauth.ValidChannel(name)
		if (aerr == nil) != (herr == nil) && !(herr == nil && len(name) > 0 && name[0] == '#') {
			t.Fatalf("channel %q: appauth %v, Herald %v", name, aerr, herr)
		}
		if appauth.ValidUserID(user) != channel.ValidUserID(user) {
			t.Fatalf("user id %q: appauth %v, Herald %v", user, appauth.ValidUserID(user), channel.ValidUserID(user))
		}
		a, err := s.AuthorizeChannel(socketID, name, &appauth.Member{UserID: user, UserInfo: map[string]string{"n": name}})
		if err != nil {
			return
		}
		if err := auth.VerifyToken("k", "secret", a.Auth, auth.ChannelString(socketID, name, a.ChannelData)); err != nil {
			t.Fatalf("Herald refuses appauth's signature for %q: %v", name, err)
		}
		u, err := s.AuthenticateUser(socketID, appauth.User{ID: user})
		if err != nil {
			return
		}
		if err := auth.VerifyToken("k", "secret", u.Auth, auth.UserString(socketID, u.UserData)); err != nil {
			t.Fatalf("Herald refuses appauth's sign-in for %q: %v", user, err)
		}
	})
}
