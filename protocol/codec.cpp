// Placeholder until the codec lands; see codec.hpp.
#include "protocol/codec.hpp"
