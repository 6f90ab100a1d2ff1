// Small helpers shared by the admin API's route files (routes*.cpp): one
// mapping of store and JSON errors to HTTP answers for every route.
#pragma once

#include <nlohmann/json.hpp>

#include "coordinator/io/json/json_model.hpp"
#include "coordinator/io/server/http_api.hpp"
#include "coordinator/io/store/sqlite.hpp"

namespace tide::coordinator {

[[nodiscard]] ApiResponse respond(int status, nlohmann::json body);
// 404 not found, 409 in use / constraint, 400 invalid, 500 anything else.
[[nodiscard]] ApiResponse from_store_error(const store::StoreError& error);
// 400 naming the field.
[[nodiscard]] ApiResponse from_json_error(const JsonError& error);
// The request's JSON body, or an empty object.
[[nodiscard]] const nlohmann::json& body_or_empty(const ApiRequest& request);

}  // namespace tide::coordinator
