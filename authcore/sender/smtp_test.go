package sender

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
)

// smtpMail is what the stand-in server received in one transaction.
type smtpMail struct {
	from string
	rcpt []string
	auth string // decoded AUTH PLAIN response, "" when none
	data string
}

// smtpStandIn speaks just enough SMTP (EHLO, AUTH PLAIN, MAIL, RCPT, DATA,
// QUIT; no TLS) on 127.0.0.1 to capture what the sender delivers.
type smtpStandIn struct {
	addr       string
	extensions []string // advertised after the EHLO greeting line
	rejectRcpt bool

	mu    sync.Mutex
	mails []smtpMail
}

func startSMTPStandIn(t *testing.T, s *smtpStandIn) *smtpStandIn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(conn) }()
		}
	}()
	return s
}

func (s *smtpStandIn) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(conn)
	reply := func(format string, args ...any) { _ = tp.PrintfLine(format, args...) }
	reply("220 stand-in ESMTP")
	var cur smtpMail
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			lines := append([]string{"stand-in"}, s.extensions...)
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				reply("250%s%s", sep, l)
			}
		case "HELO", "NOOP":
			reply("250 ok")
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			raw, err := base64.StdEncoding.DecodeString(resp)
			if !strings.EqualFold(mech, "PLAIN") || err != nil {
				reply("504 unsupported")
				continue
			}
			cur.auth = string(raw)
			reply("235 authenticated")
		case "MAIL":
			cur.from = angleAddr(arg)
			reply("250 ok")
		case "RCPT":
			if s.rejectRcpt {
				reply("550 no such user")
				continue
			}
			cur.rcpt = append(cur.rcpt, angleAddr(arg))
			reply("250 ok")
		case "DATA":
			reply("354 go ahead")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			cur.data = string(data)
			s.mu.Lock()
			s.mails = append(s.mails, cur)
			s.mu.Unlock()
			cur = smtpMail{auth: cur.auth}
			reply("250 queued")
		case "RSET":
			cur = smtpMail{auth: cur.auth}
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

// angleAddr extracts the address of "FROM:<a@b> BODY=8BITMIME".
func angleAddr(arg string) string {
	_, rest, _ := strings.Cut(arg, "<")
	addr, _, _ := strings.Cut(rest, ">")
	return addr
}

func (s *smtpStandIn) received() []smtpMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMail(nil), s.mails...)
}

func TestSMTPDeliversTheCode(t *testing.T) {
	tests := []struct {
		name       string
		extensions []string
		username   string
		password   string
		wantAuth   string
	}{
		{name: "without credentials it does not authenticate", extensions: []string{"AUTH PLAIN"}},
		{name: "with credentials it authenticates with PLAIN", extensions: []string{"AUTH PLAIN LOGIN"},
			username: "mailer", password: "smtp-pass-s3cr3t", wantAuth: "\x00mailer\x00smtp-pass-s3cr3t"},
		{name: "a relay without extensions is fine", extensions: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTPStandIn(t, &smtpStandIn{extensions: tt.extensions})
			s := NewSMTP(srv.addr, "Example Bank <no-reply@example.com>", tt.username, tt.password)
			msg := authcore.Message{To: "alice@example.com", Code: testCode, Channel: "EMAIL", Purpose: "login",
				ExpiresAt: time.Now().Add(5 * time.Minute)}
			if err := s.Send(context.Background(), msg); err != nil {
				t.Fatalf("Send: %v", err)
			}

			mails := srv.received()
			if len(mails) != 1 {
				t.Fatalf("received %d mails, want 1", len(mails))
			}
			got := mails[0]
			if got.from != "no-reply@example.com" {
				t.Errorf("MAIL FROM = %q, want no-reply@example.com", got.from)
			}
			if len(got.rcpt) != 1 || got.rcpt[0] != "alice@example.com" {
				t.Errorf("RCPT TO = %q, want [alice@example.com]", got.rcpt)
			}
			if got.auth != tt.wantAuth {
				t.Errorf("AUTH PLAIN = %q, want %q", got.auth, tt.wantAuth)
			}
			// ReadDotBytes turns the wire's CRLFs into LFs.
			header, body, ok := strings.Cut(got.data, "\n\n")
			if !ok {
				t.Fatalf("no header/body separator in %q", got.data)
			}
			for _, want := range []string{
				"Subject: Your verification code\n",
				"To: <alice@example.com>\n",
				`From: "Example Bank" <no-reply@example.com>` + "\n",
				"Content-Type: text/plain; charset=UTF-8\n",
			} {
				if !strings.Contains(header+"\n", want) {
					t.Errorf("header lacks %q:\n%s", want, header)
				}
			}
			if !strings.Contains(body, "Your verification code is "+testCode+". It expires in 5 minutes.") {
				t.Errorf("body lacks the code and its expiry:\n%s", body)
			}
		})
	}
}

func TestSMTPRejectsBadAddressesBeforeConnecting(t *testing.T) {
	srv := startSMTPStandIn(t, &smtpStandIn{})
	tests := []struct {
		name    string
		from    string
		to      string
		code    string
		wantErr string
	}{
		{"a recipient that would inject a header", "no-reply@example.com", "a@example.com\r\nBcc: evil@example.net", testCode, "invalid recipient"},
		{"a recipient that is not an address", "no-reply@example.com", "+447700900123", testCode, "invalid recipient"},
		{"a bad from address", "not an address", "a@example.com", testCode, "invalid from"},
		{"a message without a code", "no-reply@example.com", "a@example.com", "", "no code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewSMTP(srv.addr, tt.from, "", "").Send(context.Background(), authcore.Message{To: tt.to, Code: tt.code})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
	if got := srv.received(); len(got) != 0 {
		t.Errorf("received %d mails, want none", len(got))
	}
}

func TestSMTPReportsARejectedRecipientWithoutSecrets(t *testing.T) {
	srv := startSMTPStandIn(t, &smtpStandIn{extensions: []string{"AUTH PLAIN"}, rejectRcpt: true})
	const password = "smtp-pass-s3cr3t"
	err := NewSMTP(srv.addr, "no-reply@example.com", "mailer", password).
		Send(context.Background(), authcore.Message{To: "nobody@example.com", Code: testCode})
	if err == nil || !strings.Contains(err.Error(), "rcpt to") || !strings.Contains(err.Error(), "550") {
		t.Fatalf("err = %v, want the relay's 550 on rcpt to", err)
	}
	assertNoSecrets(t, err, testCode, password)
}

func TestSMTPStopsWhenTheRelayNeverAnswers(t *testing.T) {
	// A listener that accepts and then says nothing: net/smtp would wait
	// for the greeting forever without the ctx and the timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()

	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		timeout time.Duration
		want    error
	}{
		{"the caller's deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, 0, context.DeadlineExceeded},
		{"the caller's cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, 0, context.Canceled},
		{"the sender's own timeout", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, 100 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			s := NewSMTP(ln.Addr().String(), "no-reply@example.com", "", "")
			s.Timeout = tt.timeout
			start := time.Now()
			err := s.Send(ctx, authcore.Message{To: "a@example.com", Code: testCode})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v, want about 100ms", d)
			}
		})
	}
}

func TestSMTPMessageUsesCRLFLineEnds(t *testing.T) {
	from := &mail.Address{Address: "no-reply@example.com"}
	to := &mail.Address{Address: "a@example.com"}
	msg := string(buildMail(from, to, authcore.Message{Code: testCode}, time.Now()))
	if strings.Contains(strings.ReplaceAll(msg, "\r\n", ""), "\n") {
		t.Fatalf("bare LF in message:\n%q", msg)
	}
	if !strings.Contains(msg, "\r\n\r\nYour verification code is "+testCode+".") {
		t.Fatalf("body does not follow the blank line:\n%q", msg)
	}
}
