module pacegc/bench/peers/go

go 1.19
