// What a client of the OpenAI API gets back when its request cannot be served: an HTTP status
// and the body {"error": {"message", "type", "param", "code"}} that OpenAI and llama-server send,
// so a client's own error handling (and its message to the user) works unchanged.
#pragma once

#include <string>

namespace vramfit::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the request field at fault; empty: null
  std::string code;   // machine-readable reason ("invalid_type", "model_not_found" ...); empty: null
};

// 400 naming the field: what was wrong with it, in the words OpenAI uses.
ApiError invalid_field(std::string param, std::string message, std::string code = "invalid_value");

std::string error_body(const ApiError &error);

}  // namespace vramfit::server
