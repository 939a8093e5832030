module example.com/monobuild

go 1.19
