// Command pbdecode prints a Manage API protobuf answer as JSON, using the
// generated code committed in authcore/manageapi/pb, so trying the
// protobuf answer needs nothing but Go:
//
//	curl ... -H 'Accept: application/x-protobuf' --output - | go run ./cmd/pbdecode ValidateOtpResponse
//
// The message is named as in manage.proto, with or without its package
// (authgate.manage.v2).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/authgate/authgate/authcore/manageapi/pb"
)

const usage = "usage: pbdecode <message> < answer.pb   (e.g. ValidateOtpResponse)\n"

func main() {
	if len(os.Args) != 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err := decode(os.Args[1], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "pbdecode: %v\n", err)
		os.Exit(1)
	}
}

// decode reads one message of the named type from in and writes it to out
// as one line of JSON with the proto's JSON field names.
func decode(name string, in io.Reader, out io.Writer) error {
	full := protoreflect.FullName(name)
	if !strings.Contains(name, ".") {
		full = pb.File_manage_proto.Package().Append(protoreflect.Name(name))
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(full)
	if err != nil {
		return fmt.Errorf("unknown message %s: %w", name, err)
	}
	data, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	msg := mt.New().Interface()
	if err := proto.Unmarshal(data, msg); err != nil {
		return fmt.Errorf("not a %s: %w", full, err)
	}
	js, err := protojson.Marshal(msg)
	if err != nil {
		return err
	}
	// protojson varies its spacing on purpose; compact it for a stable line.
	var line bytes.Buffer
	if err := json.Compact(&line, js); err != nil {
		return err
	}
	line.WriteByte('\n')
	_, err = out.Write(line.Bytes())
	return err
}
