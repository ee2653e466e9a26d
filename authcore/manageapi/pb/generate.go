// Package pb holds the Go types generated from manage.proto, the schema
// of the Manage API's protobuf answers. The generated code is committed,
// so building needs no protoc; after changing manage.proto, regenerate
// with protoc and protoc-gen-go (the version of google.golang.org/protobuf
// in go.mod):
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go generate ./authcore/manageapi/pb
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative manage.proto
