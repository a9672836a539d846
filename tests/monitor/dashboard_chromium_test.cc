#include <gtest/gtest.h>
TEST(DashboardChromium, Placeholder) {}
