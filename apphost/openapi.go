package apphost

import (
	"strconv"

	"github.com/appfleet/appfleet/apphost/store"
	"github.com/appfleet/appfleet/spec"
)

type obj = map[string]any

// openAPI is the OpenAPI 3.1 document of an app's data API, generated from its collections.
func openAPI(name string, st *appState) obj {
	paths := obj{
		"/api/_settings": obj{"get": obj{
			"operationId": "getSettings",
			"summary":     "The app's settings",
			"responses": withErrors(obj{"200": obj{
				"description": "The settings as key/value strings",
				"content":     jsonContent(obj{"type": "object", "additionalProperties": obj{"type": "string"}}),
			}}, "401", "503"),
		}},
	}
	schemas := obj{
		"Error": obj{
			"type":     "object",
			"required": []string{"error"},
			"properties": obj{"error": obj{
				"type":     "object",
				"required": []string{"code", "message"},
				"properties": obj{
					"code":    obj{"type": "string"},
					"message": obj{"type": "string"},
					"details": obj{"type": "array", "items": obj{"type": "string"}},
				},
			}},
		},
	}
	for _, c := range st.entry.Spec.Collections {
		ref := func(suffix string) obj { return obj{"$ref": "#/components/schemas/" + c.Name + suffix} }
		props := obj{}
		record := obj{
			"id":        obj{"type": "integer", "readOnly": true},
			"createdAt": obj{"type": "string", "format": "date-time", "readOnly": true},
			"updatedAt": obj{"type": "string", "format": "date-time", "readOnly": true},
		}
		recordRequired := []string{"id", "createdAt", "updatedAt"}
		var inputRequired []string
		for _, f := range c.Fields {
			props[f.Name] = fieldSchema(f, !f.Required)
			record[f.Name] = fieldSchema(f, !f.Required)
			recordRequired = append(recordRequired, f.Name)
			if f.Required && f.Default == nil {
				inputRequired = append(inputRequired, f.Name)
			}
		}
		input := obj{"type": "object", "properties": props, "additionalProperties": false}
		if len(inputRequired) > 0 {
			input["required"] = inputRequired
		}
		schemas[c.Name] = obj{"type": "object", "properties": record, "required": recordRequired}
		schemas[c.Name+"Input"] = input
		schemas[c.Name+"Patch"] = obj{"type": "object", "properties": props, "additionalProperties": false}
		schemas[c.Name+"List"] = obj{
			"type":     "object",
			"required": []string{"items", "total"},
			"properties": obj{
				"items": obj{"type": "array", "items": ref("")},
				"total": obj{"type": "integer", "minimum": 0},
			},
		}
		params := []any{
			obj{"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 0, "maximum": store.MaxLimit, "default": store.DefaultLimit}},
			obj{"name": "offset", "in": "query", "schema": obj{"type": "integer", "minimum": 0, "default": 0}},
			obj{"name": "sort", "in": "query", "description": "Comma-separated fields; a leading - sorts descending.", "schema": obj{"type": "string"}},
			obj{"name": "id", "in": "query", "description": "Only the record with this id.", "schema": obj{"type": "integer"}},
		}
		for _, f := range c.Fields {
			if f.Type == spec.TypeJSON {
				continue
			}
			params = append(params, obj{"name": f.Name, "in": "query", "description": "Only records whose " + f.Name + " equals this.", "schema": fieldSchema(f, false)})
		}
		body := func(schema obj) obj {
			return obj{"required": true, "content": jsonContent(schema)}
		}
		paths["/api/"+c.Name] = obj{
			"get": obj{
				"operationId": "list_" + c.Name,
				"summary":     "List " + c.Name,
				"parameters":  params,
				"responses":   withErrors(obj{"200": obj{"description": "A page of records", "content": jsonContent(ref("List"))}}, "400", "401", "503"),
			},
			"post": obj{
				"operationId": "create_" + c.Name,
				"summary":     "Create a record in " + c.Name,
				"requestBody": body(ref("Input")),
				"responses":   withErrors(obj{"201": obj{"description": "The created record", "content": jsonContent(ref(""))}}, "400", "401", "409", "503"),
			},
		}
		paths["/api/"+c.Name+"/{id}"] = obj{
			"parameters": []any{obj{"name": "id", "in": "path", "required": true, "schema": obj{"type": "integer", "minimum": 1}}},
			"get": obj{
				"operationId": "get_" + c.Name,
				"summary":     "Read a record of " + c.Name,
				"responses":   withErrors(obj{"200": obj{"description": "The record", "content": jsonContent(ref(""))}}, "401", "404", "503"),
			},
			"patch": obj{
				"operationId": "update_" + c.Name,
				"summary":     "Change fields of a record of " + c.Name,
				"requestBody": body(ref("Patch")),
				"responses":   withErrors(obj{"200": obj{"description": "The updated record", "content": jsonContent(ref(""))}}, "400", "401", "404", "409", "503"),
			},
			"delete": obj{
				"operationId": "delete_" + c.Name,
				"summary":     "Delete a record of " + c.Name,
				"responses":   withErrors(obj{"204": obj{"description": "Deleted"}}, "401", "404", "503"),
			},
		}
	}
	doc := obj{
		"openapi": "3.1.0",
		"info": obj{
			"title":   name + " data API",
			"version": strconv.FormatInt(st.entry.Generation, 10),
		},
		"servers":    []any{obj{"url": "/apps/" + name}},
		"paths":      paths,
		"components": obj{"schemas": schemas},
	}
	if len(st.keys) > 0 {
		doc["components"].(obj)["securitySchemes"] = obj{"apiKey": obj{"type": "http", "scheme": "bearer", "description": "One of the app's API keys."}}
		doc["security"] = []any{obj{"apiKey": []string{}}}
	}
	return doc
}

func jsonContent(schema obj) obj { return obj{"application/json": obj{"schema": schema}} }

var errorDescriptions = map[string]string{
	"400": "Invalid input; details name each field and reason",
	"401": "An API key is required",
	"404": "No such record",
	"409": "A unique field's value already exists",
	"503": "The app is stopped, not ready, or over its in-flight limit",
}

func withErrors(responses obj, codes ...string) obj {
	for _, c := range codes {
		responses[c] = obj{"description": errorDescriptions[c], "content": jsonContent(obj{"$ref": "#/components/schemas/Error"})}
	}
	return responses
}

func fieldSchema(f spec.Field, nullable bool) obj {
	var s obj
	switch f.Type {
	case spec.TypeInteger:
		s = obj{"type": "integer"}
	case spec.TypeNumber:
		s = obj{"type": "number"}
	case spec.TypeBoolean:
		s = obj{"type": "boolean"}
	case spec.TypeDatetime:
		s = obj{"type": "string", "format": "date-time"}
	case spec.TypeJSON:
		return obj{}
	case spec.TypeEnum:
		vals := make([]any, 0, len(f.Values)+1)
		for _, v := range f.Values {
			vals = append(vals, v)
		}
		s = obj{"type": "string", "enum": vals}
		if nullable {
			s["type"] = []string{"string", "null"}
			s["enum"] = append(vals, nil)
		}
		nullable = false
	default:
		s = obj{"type": "string"}
	}
	if nullable {
		s["type"] = []string{s["type"].(string), "null"}
	}
	if f.Default != nil {
		s["default"] = f.Default
	}
	return s
}
