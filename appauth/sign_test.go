package appauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
)

// Published vectors (the Pusher docs and server SDK tests; see
// pusher-protocol.md §8.1 in the reference notes).
func TestAuthorizeChannelVectors(t *testing.T) {
	mk := func(b64 string) []byte {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name, key, secret, socket, channel string
		member                             *Member
		masterKey                          []byte
		want                               ChannelAuth
	}{
		{"A1 private", "278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1234", "private-foobar", nil, nil,
			ChannelAuth{Auth: "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"}},
		{"A3 presence", "278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1234", "presence-foobar",
			&Member{UserID: "10", UserInfo: map[string]string{"name": "Mr. Pusher"}}, nil,
			ChannelAuth{Auth: "278d425bdf160c739803:48dac51d2d7569e1e9c0f48c227d4b26f238fa68e5c0bb04222c966909c4f7c4",
				ChannelData: `{"user_id":"10","user_info":{"name":"Mr. Pusher"}}`}},
		{"A5 public name", "aaaa", "tofu", "123.456", "test", nil, nil,
			ChannelAuth{Auth: "aaaa:efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c"}},
		{"A23 every allowed character", "k", "thisisasecret", "45055.28877557", "-azAZ9_=@,.;", nil, nil,
			ChannelAuth{Auth: "k:d1c20ad7684c172271f92c108e11b45aef07499b005796ae1ec5beb924f361c4"}},
		{"A25 private", "foo", "bar", "345.23", "private-channel", nil, nil,
			ChannelAuth{Auth: "foo:89955e77e1b40e33df6d515a5ecbba86a01dc816a5b720da18a06fd26f7d92ff"}},
		{"A26 encrypted", "foo", "bar", "345.23", "private-encrypted-channel", nil, mk("OHRXNUZRTG5pUTFzQlFGd3J3N3Q2VFZFc0paZDEweVk="),
			ChannelAuth{Auth: "foo:fff0503dfe4929f5162efe4d1dacbce524b0d8e7e1331117a8651c0e74d369e3",
				SharedSecret: "VmIsNZtCSteh8kazd2toc+ofhohBtUouQRSDtRvuyVI="}},
		{"A27 presence", "foo", "bar", "345.43245", "presence-channel",
			&Member{UserID: "fred", UserInfo: json.RawMessage(`{"key": "value"}`)}, nil,
			ChannelAuth{Auth: "foo:e80ba6439492c2113022c39297a87a948de14061cc67b5788e045645a68b8ccd",
				ChannelData: `{"user_id":"fred","user_info":{"key":"value"}}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(tt.key, tt.secret, tt.masterKey)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.AuthorizeChannel(tt.socket, tt.channel, tt.member)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestAuthenticateUserVectors(t *testing.T) {
	tests := []struct {
		name, key, secret, socket string
		user                      User
		want                      UserAuth
	}{
		{"A2", "278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1234", User{ID: "12345"},
			UserAuth{Auth: "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba", UserData: `{"id":"12345"}`}},
		{"A13", "aaaa", "tofu", "123.456", User{ID: "45678"},
			UserAuth{Auth: "aaaa:f4b1fdeea7c93e32648c7230e32b172057c5623cace6cfce791c6e7035e0babd", UserData: `{"id":"45678"}`}},
		{"A20", "thisisaauthkey", "thisisasecret", "12345.6789", User{ID: "123"},
			UserAuth{Auth: "thisisaauthkey:fc713f433deb729d0d96f9e26ef054285cbc3e833ebe840b93722a2fa16a6a18", UserData: `{"id":"123"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(tt.key, tt.secret, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.AuthenticateUser(tt.socket, tt.user)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestUserDataCarriesInfoAndWatchlist(t *testing.T) {
	s, _ := NewSigner("k", "s", nil)
	got, err := s.AuthenticateUser("1.2", User{ID: "u", UserInfo: map[string]string{"name": "<b>"}, Watchlist: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	// Not HTML-escaped: the bytes JSON.stringify would sign.
	if want := `{"id":"u","user_info":{"name":"<b>"},"watchlist":["a","b"]}`; got.UserData != want {
		t.Errorf("user_data %s, want %s", got.UserData, want)
	}
	if want := "k:" + sign("s", "1.2::user::"+got.UserData); got.Auth != want {
		t.Errorf("auth %s, want %s", got.Auth, want)
	}
}

func TestSignerRefusals(t *testing.T) {
	s, _ := NewSigner("k", "s", nil)
	for _, id := range []string{"", "1", "1.", ".1", "a.1", "1.2.3", "1 .2", "١.٢"} {
		if _, err := s.AuthorizeChannel(id, "private-a", nil); !errors.Is(err, ErrInvalidSocketID) {
			t.Errorf("socket id %q: %v, want ErrInvalidSocketID", id, err)
		}
	}
	for _, ch := range []string{"", "private-a b", "#server-to-user-x", "private-é", string(make([]byte, 201))} {
		if _, err := s.AuthorizeChannel("1.2", ch, nil); !errors.Is(err, ErrInvalidChannel) {
			t.Errorf("channel %q: %v, want ErrInvalidChannel", ch, err)
		}
	}
	if _, err := s.AuthorizeChannel("1.2", "presence-a", nil); !errors.Is(err, ErrInvalidUserID) {
		t.Errorf("presence without member: %v", err)
	}
	if _, err := s.AuthorizeChannel("1.2", "presence-a", &Member{UserID: "a b"}); !errors.Is(err, ErrInvalidUserID) {
		t.Errorf("presence with a bad user id: %v", err)
	}
	if _, err := s.AuthorizeChannel("1.2", "private-encrypted-a", nil); !errors.Is(err, ErrNoMasterKey) {
		t.Errorf("encrypted without master key: %v", err)
	}
	if _, err := s.AuthenticateUser("1.2", User{}); !errors.Is(err, ErrInvalidUserID) {
		t.Errorf("user without id: %v", err)
	}
	// Herald refuses a sign-in whose watchlist names an id no user could
	// sign in with: the signer refuses to sign it.
	for _, w := range [][]string{{"ok", "a b"}, {""}, {string(make([]byte, 129))}} {
		if _, err := s.AuthenticateUser("1.2", User{ID: "u", Watchlist: w}); !errors.Is(err, ErrInvalidUserID) {
			t.Errorf("watchlist %q: %v, want ErrInvalidUserID", w, err)
		}
	}
	if _, err := NewSigner("k", "s", make([]byte, 31)); err == nil {
		t.Error("a 31-byte master key was accepted")
	}
	if _, err := NewSigner("k:x", "s", nil); err == nil {
		t.Error("a key with ':' was accepted")
	}
}
