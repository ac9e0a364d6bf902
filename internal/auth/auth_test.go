package auth_test

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/auth"
)

// signVectors are the published channel authorization and user
// authentication signatures (reference §8.1, A1–A31).
var signVectors = []struct {
	name, secret, msg, want string
}{
	{"A1 private", "7ad3773142a6692b25b8", "1234.1234:private-foobar", "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"},
	{"A2 user", "7ad3773142a6692b25b8", `1234.1234::user::{"id":"12345"}`, "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"},
	{"A3 presence", "7ad3773142a6692b25b8", `1234.1234:presence-foobar:{"user_id":"10","user_info":{"name":"Mr. Pusher"}}`, "48dac51d2d7569e1e9c0f48c227d4b26f238fa68e5c0bb04222c966909c4f7c4"},
	{"A4 presence numeric id", "7ad3773142a6692b25b8", `1234.1234:presence-foobar:{"user_id":10,"user_info":{"name":"Mr. Pusher"}}`, "afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c"},
	{"A4 docs erratum corrected", "7ad3773142a6692b25b8", `1234.1234:presence-foobar:{"user_id":10,"user_info":{"name":"Mr. Channels"}}`, "31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"},
	{"A5", "tofu", "123.456:test", "efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c"},
	{"A6", "tofu", "321.654:test", "f6ecb0a17d3e4f68aca28f1673197a7608587c09deb0208faa4b5519aee0a777"},
	{"A7", "tofu", "123.456:test1", "d5ab857f805433cb50562da96afa41688d7742a3c3a021ed15a4d991a4d8cf94"},
	{"A8", "tofu", "123.456:test2", "43affa6a09af1fb9ce1cadf176171346beaf7366673ec1e5920f68b3e97a466d"},
	{"A9", "1", "123.456:test", "584828bd6e80b2d177d2b28fde07b8e170abf87ccb5a791a50c933711fb8eb28"},
	{"A10", "2", "123.456:test", "269bbf3f7625db4e0d0525b617efa5915c3ae667fd222dc8e4cb94bc531f26f2"},
	{"A11 public with data", "tofu", `123.456:test:{"foo":"bar"}`, "f41faf9ead2ea76772cc6b1168363057459f02499ae4d92e88229dc7f4efa2d4"},
	{"A12 utf-8 channel data", "tofu", `1.1:test:"ą§¶™€łü€ß£"`, "2a229263e89d9c50524fd80c2e88be2843379f6931e28995e2cc214282c9db0c"},
	{"A13", "tofu", `123.456::user::{"id":"45678"}`, "f4b1fdeea7c93e32648c7230e32b172057c5623cace6cfce791c6e7035e0babd"},
	{"A14", "tofu", `123.456::user::{"id":"55555","user_name":"test"}`, "b8a9f173455903792ae2b788add0c4c78ad7372b3ae7fb5769479276a1993743"},
	{"A15", "1", `123.456::user::{"id":"45678"}`, "79bddf29fe8e2153dd5d8d569b3f45e5aeb26ae2eb4758879d844791b466cfa2"},
	{"A16", "2", `123.456::user::{"id":"45678"}`, "a542498ffa6faf6de7c17a8106b923c042319bd73acfd1d274df32e269b55d1f"},
	{"A17 utf-8 user id", "tofu", `1.1::user::{"id":"ą§¶™€łü€ß£"}`, "620494cee53d6c568b49598313194088afda37218f0d059af03c0c898ed61ff4"},
	{"A18 encrypted", "tofu", `123.456:private-encrypted-bla:"foo"`, "962c48b78bf93d98ff4c92ee7dff04865821455b7b401e9d60a9e0a90af2c105"},
	{"A19", "tofu", `123.456:bla:"foo"`, "013ad3da0d88e0df6ae0a8184bef50b9c3933f2344499e6e3d1ad67fad799e20"},
	{"A20", "thisisasecret", `12345.6789::user::{"id":"123"}`, "fc713f433deb729d0d96f9e26ef054285cbc3e833ebe840b93722a2fa16a6a18"},
	{"A21", "thisisasecret", `12345.6789::user::{"id":"123","name":"John Smith"}`, "0dddb208b53c7649f3fbbb86254a6e1986bc6f8b566423ea690c9ca773497373"},
	{"A22", "thisisasecret", "1.1:testing_pusher-php", "751ccc12aeaa79d46f7c199bced5fa47527d3480b51fe61a0bd10438241bd52d"},
	{"A23 all punctuation", "thisisasecret", "45055.28877557:-azAZ9_=@,.;", "d1c20ad7684c172271f92c108e11b45aef07499b005796ae1ec5beb924f361c4"},
	{"A24 data with space", "thisisasecret", `45055.28877557:-azAZ9_=@,.;:{"user_id": "123"}`, "3b3f1dcc4d7d2f95dd10ed05562397b3287b102d4cccfacbf30eed2f1ffa3d69"},
	{"A25", "bar", "345.23:private-channel", "89955e77e1b40e33df6d515a5ecbba86a01dc816a5b720da18a06fd26f7d92ff"},
	{"A26", "bar", "345.23:private-encrypted-channel", "fff0503dfe4929f5162efe4d1dacbce524b0d8e7e1331117a8651c0e74d369e3"},
	{"A27", "bar", `345.43245:presence-channel:{"user_id":"fred","user_info":{"key":"value"}}`, "e80ba6439492c2113022c39297a87a948de14061cc67b5788e045645a68b8ccd"},
	{"A28", "secret", `1.1:presence-c1:{"money": "1.32"}`, "7f2ae5922800a20b9615543ce7c8e7d1c97115d108939410825ea690f308a05f"},
	{"A29", "secret", `12345.12345::user::{"id":"1234"}`, "e4c63b82c1e1d0955901f6a29ca51b244155bafda93968bc5664010f5ba54a41"},
	{"A30", "12345678900000001", "1.1:test_channel", "02259dff9a2a3f71ea8ab29ac0c0c0ef7996c8f3fd3702be5533f30da7d7fed4"},
	{"A31 generic", "supersecret", "Hello!", "64e3f44166575febbc5de88c9476325ea7d4b3684752158d9fdb31fce34b980d"},
}

func TestSignVectors(t *testing.T) {
	for _, v := range signVectors {
		t.Run(v.name, func(t *testing.T) {
			if got := auth.Sign(v.secret, v.msg); got != v.want {
				t.Errorf("Sign(%q, %q) = %s, want %s", v.secret, v.msg, got, v.want)
			}
		})
	}
}

func TestChannelString(t *testing.T) {
	tests := []struct {
		socketID, channel, data, want string
	}{
		{"1234.1234", "private-foobar", "", "1234.1234:private-foobar"},
		{"1234.1234", "presence-foobar", `{"user_id":"10","user_info":{"name":"Mr. Pusher"}}`,
			`1234.1234:presence-foobar:{"user_id":"10","user_info":{"name":"Mr. Pusher"}}`},
		// channel_data is appended byte for byte, spaces and all (A24).
		{"45055.28877557", "-azAZ9_=@,.;", `{"user_id": "123"}`, `45055.28877557:-azAZ9_=@,.;:{"user_id": "123"}`},
		{"1.1", "test", `"ą§¶™€łü€ß£"`, `1.1:test:"ą§¶™€łü€ß£"`},
	}
	for _, tt := range tests {
		if got := auth.ChannelString(tt.socketID, tt.channel, tt.data); got != tt.want {
			t.Errorf("ChannelString(%q, %q, %q) = %q, want %q", tt.socketID, tt.channel, tt.data, got, tt.want)
		}
	}
}

func TestUserString(t *testing.T) {
	tests := []struct{ socketID, data, want string }{
		{"1234.1234", `{"id":"12345"}`, `1234.1234::user::{"id":"12345"}`},
		{"12345.6789", `{"id":"123","name":"John Smith"}`, `12345.6789::user::{"id":"123","name":"John Smith"}`},
		{"1.1", "", "1.1::user::"},
	}
	for _, tt := range tests {
		if got := auth.UserString(tt.socketID, tt.data); got != tt.want {
			t.Errorf("UserString(%q, %q) = %q, want %q", tt.socketID, tt.data, got, tt.want)
		}
	}
}

// TestTokenVectors checks complete auth strings as the SDK tests state them,
// built from their parts with ChannelString/UserString.
func TestTokenVectors(t *testing.T) {
	tests := []struct {
		name, key, secret, msg, want string
	}{
		{"A1", "278d425bdf160c739803", "7ad3773142a6692b25b8", auth.ChannelString("1234.1234", "private-foobar", ""),
			"278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"},
		{"A2", "278d425bdf160c739803", "7ad3773142a6692b25b8", auth.UserString("1234.1234", `{"id":"12345"}`),
			"278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"},
		{"A3", "278d425bdf160c739803", "7ad3773142a6692b25b8",
			auth.ChannelString("1234.1234", "presence-foobar", `{"user_id":"10","user_info":{"name":"Mr. Pusher"}}`),
			"278d425bdf160c739803:48dac51d2d7569e1e9c0f48c227d4b26f238fa68e5c0bb04222c966909c4f7c4"},
		{"A5 key aaaa", "aaaa", "tofu", auth.ChannelString("123.456", "test", ""),
			"aaaa:efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c"},
		{"A5 key abcdef", "abcdef", "tofu", auth.ChannelString("123.456", "test", ""),
			"abcdef:efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c"},
		{"A9", "11111", "1", auth.ChannelString("123.456", "test", ""),
			"11111:584828bd6e80b2d177d2b28fde07b8e170abf87ccb5a791a50c933711fb8eb28"},
		{"A13", "1234", "tofu", auth.UserString("123.456", `{"id":"45678"}`),
			"1234:f4b1fdeea7c93e32648c7230e32b172057c5623cace6cfce791c6e7035e0babd"},
		{"A18", "f00d", "tofu", auth.ChannelString("123.456", "private-encrypted-bla", `"foo"`),
			"f00d:962c48b78bf93d98ff4c92ee7dff04865821455b7b401e9d60a9e0a90af2c105"},
		{"A20", "thisisaauthkey", "thisisasecret", auth.UserString("12345.6789", `{"id":"123"}`),
			"thisisaauthkey:fc713f433deb729d0d96f9e26ef054285cbc3e833ebe840b93722a2fa16a6a18"},
		{"A29", "key", "secret", auth.UserString("12345.12345", `{"id":"1234"}`),
			"key:e4c63b82c1e1d0955901f6a29ca51b244155bafda93968bc5664010f5ba54a41"},
		{"A30", "12345678900000001", "12345678900000001", auth.ChannelString("1.1", "test_channel", ""),
			"12345678900000001:02259dff9a2a3f71ea8ab29ac0c0c0ef7996c8f3fd3702be5533f30da7d7fed4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := auth.Token(tt.key, tt.secret, tt.msg)
			if got != tt.want {
				t.Fatalf("Token = %s, want %s", got, tt.want)
			}
			if err := auth.VerifyToken(tt.key, tt.secret, tt.want, tt.msg); err != nil {
				t.Fatalf("VerifyToken of the published token: %v", err)
			}
		})
	}
}

func TestVerifyToken(t *testing.T) {
	const (
		key    = "278d425bdf160c739803"
		secret = "7ad3773142a6692b25b8"
		socket = "1234.1234"
	)
	presenceData := `{"user_id":"10","user_info":{"name":"Mr. Pusher"}}`
	private := auth.ChannelString(socket, "private-foobar", "")
	presence := auth.ChannelString(socket, "presence-foobar", presenceData)
	privateToken := key + ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
	presenceToken := key + ":48dac51d2d7569e1e9c0f48c227d4b26f238fa68e5c0bb04222c966909c4f7c4"
	userToken := key + ":4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
	longKey := strings.Repeat("k", 100)

	tests := []struct {
		name       string
		key        string
		secret     string
		token, msg string
		want       error  // nil for success
		wantInMsg  string // substring of the error text
		wantNotMsg string // text the error must not contain
	}{
		{name: "private good", key: key, secret: secret, token: privateToken, msg: private},
		{name: "presence good", key: key, secret: secret, token: presenceToken, msg: presence},
		{name: "user good", key: key, secret: secret, token: userToken, msg: auth.UserString(socket, `{"id":"12345"}`)},
		{name: "wrong key", key: key, secret: secret, token: "INSERT_YOUR_KEY_HERE:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4",
			msg: private, want: auth.ErrWrongKey, wantInMsg: "'INSERT_YOUR_KEY_HERE'"},
		{name: "wrong key truncated", key: key, secret: secret, token: longKey + ":abc", msg: private,
			want: auth.ErrWrongKey, wantInMsg: "'" + longKey[:64] + "…'", wantNotMsg: longKey[:65]},
		{name: "signed with another secret", key: key, secret: secret, token: auth.Token(key, "other", private), msg: private,
			want: auth.ErrBadSignature, wantInMsg: private, wantNotMsg: secret},
		{name: "bad signature", key: key, secret: secret, token: key + ":" + strings.Repeat("0", 64), msg: private,
			want: auth.ErrBadSignature},
		{name: "signature truncated", key: key, secret: secret, token: privateToken[:len(privateToken)-1], msg: private,
			want: auth.ErrBadSignature},
		{name: "signature with trailing junk", key: key, secret: secret, token: privateToken + ":x", msg: private,
			want: auth.ErrBadSignature},
		{name: "another socket", key: key, secret: secret, token: privateToken,
			msg: auth.ChannelString("1234.1235", "private-foobar", ""), want: auth.ErrBadSignature},
		{name: "another channel", key: key, secret: secret, token: privateToken,
			msg: auth.ChannelString(socket, "private-foobaz", ""), want: auth.ErrBadSignature},
		{name: "private token used for presence", key: key, secret: secret, token: privateToken,
			msg: auth.ChannelString(socket, "private-foobar", presenceData), want: auth.ErrBadSignature},
		{name: "tampered channel_data", key: key, secret: secret, token: presenceToken,
			msg: auth.ChannelString(socket, "presence-foobar", `{"user_id":"11","user_info":{"name":"Mr. Pusher"}}`), want: auth.ErrBadSignature},
		{name: "re-serialised channel_data", key: key, secret: secret, token: presenceToken,
			msg: auth.ChannelString(socket, "presence-foobar", `{"user_id": "10", "user_info": {"name": "Mr. Pusher"}}`), want: auth.ErrBadSignature},
		{name: "channel token used to sign in", key: key, secret: secret, token: privateToken,
			msg: auth.UserString(socket, "private-foobar"), want: auth.ErrBadSignature},
		{name: "empty", key: key, secret: secret, token: "", msg: private, want: auth.ErrMalformedToken},
		{name: "no colon", key: key, secret: secret, token: "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4", msg: private,
			want: auth.ErrMalformedToken},
		{name: "empty key", key: key, secret: secret, token: ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4", msg: private,
			want: auth.ErrMalformedToken},
		{name: "empty signature", key: key, secret: secret, token: key + ":", msg: private, want: auth.ErrMalformedToken},
		{name: "colon only", key: key, secret: secret, token: ":", msg: private, want: auth.ErrMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := auth.VerifyToken(tt.key, tt.secret, tt.token, tt.msg)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifyToken: %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyToken error = %v, want %v", err, tt.want)
			}
			for _, other := range []error{auth.ErrMalformedToken, auth.ErrWrongKey, auth.ErrBadSignature} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error %v also matches %v", err, other)
				}
			}
			if tt.wantInMsg != "" && !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantInMsg)
			}
			if tt.wantNotMsg != "" && strings.Contains(err.Error(), tt.wantNotMsg) {
				t.Errorf("error %q contains %q", err, tt.wantNotMsg)
			}
		})
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"abc", "abc", true},
		{"", "", true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"abc", "ABC", false},
	}
	for _, tt := range tests {
		if got := auth.Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestSharedSecretVectors uses the encrypted channel vectors of §8.2.
func TestSharedSecretVectors(t *testing.T) {
	b64 := func(s string) []byte {
		t.Helper()
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name      string
		channel   string
		masterKey []byte
		want      string // base64
	}{
		{"node", "private-encrypted-bla", b64("zyrm8pvV2C9fJcBfhyXzvxbJVN/H7QLmbe0xJi1GhPU="), "nlr49ISQHz91yS3cy/yWmW8wFMNeTnNL5tNHnbPJcLQ="},
		{"python", "private-encrypted-channel", b64("OHRXNUZRTG5pUTFzQlFGd3J3N3Q2VFZFc0paZDEweVk="), "VmIsNZtCSteh8kazd2toc+ofhohBtUouQRSDtRvuyVI="},
		{"ruby raw ascii key", "private-encrypted-test_channel", []byte("3W1pfB/Etr+ZIlfMWwZP3gz8jEeCt4s2pe6Vpr+2c3M="), "o0L3QnIovCeRC8KTD8KBRlmi31dGzHVS2M93uryqDdw="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := base64.StdEncoding.EncodeToString(auth.SharedSecret(tt.channel, tt.masterKey))
			if got != tt.want {
				t.Errorf("SharedSecret = %s, want %s", got, tt.want)
			}
		})
	}
	// The go SDK's vector is given in hex.
	got := hex.EncodeToString(auth.SharedSecret("private-encrypted-bla", []byte("This is a string that is 32 chars")))
	if want := "004831f99d2a4e86723e893caded3a2897deeddbed9514fe9497dcddc52bd50b"; got != want {
		t.Errorf("SharedSecret (go vector) = %s, want %s", got, want)
	}
}
