package main

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/authgate/authgate/authcore/manageapi/pb"
)

func TestDecodePrintsTheAnswerAsJSON(t *testing.T) {
	stage := "ONE"
	data, err := proto.Marshal(&pb.ValidateOtpResponse{ApiRequestId: "req-1",
		User: &pb.User{FirstName: "Alice", IsValid: true, TextCountryCode: "356", UserRolloutStage: &stage}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiRequestId":"req-1","user":{"firstName":"Alice","isValid":true,"textCountryCode":"356","userRolloutStage":"ONE"}}` + "\n"
	for _, name := range []string{"ValidateOtpResponse", "authgate.manage.v2.ValidateOtpResponse"} {
		var out bytes.Buffer
		if err := decode(name, bytes.NewReader(data), &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Fatalf("%s:\n got %s\nwant %s", name, out.String(), want)
		}
	}
}

func TestDecodeRefusesUnknownMessagesAndBadInput(t *testing.T) {
	if err := decode("Nope", strings.NewReader(""), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "unknown message Nope") {
		t.Fatalf("error %v", err)
	}
	if err := decode("ValidateOtpResponse", strings.NewReader(`{"errors":[]}`), &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "not a authgate.manage.v2.ValidateOtpResponse") {
		t.Fatalf("error %v", err)
	}
}
