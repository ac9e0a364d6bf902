package appauth_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhq/herald/appauth"
)

// currentUser stands for the app's own session lookup.
func currentUser(r *http.Request) (id, name string, ok bool) {
	c, err := r.Cookie("session")
	if err != nil || c.Value != "alice-session" {
		return "", "", false
	}
	return "alice", "Alice", true
}

// An app's auth endpoints: one decision function, two handlers on any
// router built on net/http.
func Example() {
	auth, err := appauth.New(appauth.Options{
		Key:    "app-key",
		Secret: "app-secret",
		Decide: func(r *appauth.Request) appauth.Decision {
			id, name, ok := currentUser(r.HTTP)
			if !ok || strings.HasPrefix(r.Channel, "private-admin-") {
				return appauth.Deny()
			}
			return appauth.AllowUser(id, map[string]string{"name": name})
		},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/pusher/auth", auth.ChannelHandler())
	mux.Handle("/pusher/user-auth", auth.UserHandler())

	// What pusher-js sends for a presence channel.
	r := httptest.NewRequest("POST", "/pusher/auth", strings.NewReader("socket_id=123.456&channel_name=presence-room"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: "session", Value: "alice-session"})
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body)

	r = httptest.NewRequest("POST", "/pusher/auth", strings.NewReader("socket_id=123.456&channel_name=private-admin-x"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: "session", Value: "alice-session"})
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body)
	// Output:
	// 200 {"auth":"app-key:7a25b536660727d4cceeddf6430b3bdb42e5bab5e22d3daa74f6614c80fbbca3","channel_data":"{\"user_id\":\"alice\",\"user_info\":{\"name\":\"Alice\"}}"}
	// 403 Forbidden
}

// User authentication (pusher-js's signin): the decision gives the user,
// its user_info and watchlist.
func ExampleAuthorizer_UserHandler() {
	auth, _ := appauth.New(appauth.Options{Key: "app-key", Secret: "app-secret",
		Decide: func(r *appauth.Request) appauth.Decision {
			return appauth.Decision{Allow: true, UserID: "alice", Watchlist: []string{"bob"}}
		}})
	r := httptest.NewRequest("POST", "/pusher/user-auth", strings.NewReader("socket_id=123.456"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	auth.UserHandler().ServeHTTP(w, r)
	fmt.Println(w.Body)
	// Output:
	// {"auth":"app-key:371a4d9fe44350970737fb0a983fad7d5f1b7aede126bc1d694228e38ce1a779","user_data":"{\"id\":\"alice\",\"watchlist\":[\"bob\"]}"}
}

// pusher-js's JSONP transport, from a page of an allowed origin.
func ExampleAuthorizer_ChannelHandler_jsonp() {
	auth, _ := appauth.New(appauth.Options{Key: "app-key", Secret: "app-secret",
		AllowedOrigins: []string{"https://www.example.com"},
		Decide:         func(*appauth.Request) appauth.Decision { return appauth.Allow() }})
	q := url.Values{"callback": {"Pusher.auth_callbacks['1']"}, "socket_id": {"123.456"}, "channel_name": {"private-a"}}
	r := httptest.NewRequest("GET", "https://auth.example.com/pusher/auth?"+q.Encode(), nil)
	r.Header.Set("Sec-Fetch-Site", "same-site")
	r.Header.Set("Referer", "https://www.example.com/chat")
	w := httptest.NewRecorder()
	auth.ChannelHandler().ServeHTTP(w, r)
	fmt.Println(w.Header().Get("Content-Type"))
	fmt.Print(w.Body)

	// The same request from a page of another site gets nothing.
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.Header.Set("Referer", "https://evil.example/")
	w = httptest.NewRecorder()
	auth.ChannelHandler().ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body)
	// Output:
	// application/javascript; charset=utf-8
	// Pusher.auth_callbacks['1']({"auth":"app-key:939cdd51ade6a0291b4f212e88bb870698e68f553bbc5ef10859c7383dac3131"});
	// 403 Forbidden
}

// The pusher-js-auth plugin's batch: one request, an answer per channel.
func ExampleAuthorizer_ChannelHandler_batch() {
	auth, _ := appauth.New(appauth.Options{Key: "app-key", Secret: "app-secret",
		Decide: func(r *appauth.Request) appauth.Decision {
			return appauth.Decision{Allow: r.Channel != "private-b"}
		}})
	r := httptest.NewRequest("POST", "/pusher/auth", strings.NewReader("&socket_id=123.456&channel_name[0]=private-a&channel_name[1]=private-b"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	auth.ChannelHandler().ServeHTTP(w, r)
	fmt.Println(w.Body)
	// Output:
	// {"private-a":{"status":200,"data":{"auth":"app-key:939cdd51ade6a0291b4f212e88bb870698e68f553bbc5ef10859c7383dac3131"}},"private-b":{"status":403}}
}

// A CSRF header checked against a cookie (double submit), as Laravel Echo
// sends it.
func ExampleCSRFCookie() {
	auth, _ := appauth.New(appauth.Options{Key: "app-key", Secret: "app-secret",
		CSRFToken: appauth.CSRFCookie("XSRF-TOKEN"),
		Decide:    func(*appauth.Request) appauth.Decision { return appauth.Allow() }})
	for _, header := range []string{"", "t0ken"} {
		r := httptest.NewRequest("POST", "/broadcasting/auth", strings.NewReader("socket_id=1.2&channel_name=private-a"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(&http.Cookie{Name: "XSRF-TOKEN", Value: "t0ken"})
		r.Header.Set("X-CSRF-TOKEN", header)
		w := httptest.NewRecorder()
		auth.ChannelHandler().ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	// Output:
	// 403
	// 200
}

// Signing without HTTP, as the Pusher server SDKs' authorizeChannel does.
func ExampleSigner_AuthorizeChannel() {
	s, _ := appauth.NewSigner("278d425bdf160c739803", "7ad3773142a6692b25b8", nil)
	a, _ := s.AuthorizeChannel("1234.1234", "private-foobar", nil)
	fmt.Println(a.Auth)
	// Output:
	// 278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4
}

// A Centrifugo subscription token, HS256 with the app's JWT secret.
func ExampleTokenSigner_Subscription() {
	s, _ := appauth.NewTokenSigner("HS256", []byte("jwt-secret"))
	now := time.Unix(1_800_000_000, 0)
	tok, _ := s.Subscription(appauth.SubscriptionClaims{Sub: "alice", Channel: "$room", ExpiresAt: now.Add(time.Hour)}, now)
	fmt.Println(strings.Count(tok, "."), len(tok) > 0)
	// Output:
	// 2 true
}

// Centrifuge's batch, {"client", "channels"}: a subscription JWT per allowed
// channel, bound to the client id and signed for the decision's user.
func ExampleAuthorizer_ChannelHandler_centrifuge() {
	tokens, _ := appauth.NewTokenSigner("HS256", []byte("jwt-secret"))
	auth, _ := appauth.New(appauth.Options{Key: "app-key", Secret: "app-secret", Tokens: tokens,
		Now: func() time.Time { return time.Unix(1_800_000_000, 0) },
		Decide: func(r *appauth.Request) appauth.Decision {
			if r.Channel == "$admin" {
				return appauth.Deny()
			}
			return appauth.AllowUser("alice", nil)
		}})
	r := httptest.NewRequest("POST", "/centrifuge/subscribe", strings.NewReader(`{"client":"c-1","channels":["$room","$admin"]}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	auth.ChannelHandler().ServeHTTP(w, r)
	var out map[string]struct {
		Status int    `json:"status"`
		Token  string `json:"token"`
	}
	json.Unmarshal(w.Body.Bytes(), &out)
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(out["$room"].Token, ".")[1])
	fmt.Println(string(payload))
	fmt.Println(out["$admin"].Status)
	// Output:
	// {"sub":"alice","exp":1800003600,"iat":1800000000,"channel":"$room","client":"c-1"}
	// 403
}
