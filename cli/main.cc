#include <cstdio>
int main() { std::puts("mbxmerge: not built yet"); return 2; }
