module motebench

go 1.19
